//! The backend trait every cloud implements: the local one (Docker + lookout's store) and
//! OpenStack. Object-safe, so the listener holds an `Arc<dyn CloudBackend>`.

use std::future::Future;
use std::pin::Pin;

use crate::error::CloudResult;
use crate::model::*;
use crate::money::Money;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything the Concertim profile asks of a cloud. Every method receives the caller's
/// `cloud_env` where the route carries one; a backend decides what it proves.
pub trait CloudBackend: Send + Sync {
    /// `local` or `openstack`.
    fn name(&self) -> &'static str;

    fn create_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user: NewUser,
    ) -> BoxFuture<'a, CloudResult<CreatedUser>>;

    /// Returns the names of the fields that changed (`email`, `password`).
    fn update_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
        changes: UserChanges,
    ) -> BoxFuture<'a, CloudResult<Vec<String>>>;

    fn delete_user<'a>(
        &'a self,
        env: &'a CloudEnv,
        user_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn create_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<CreatedTeam>>;

    fn delete_team<'a>(
        &'a self,
        env: &'a CloudEnv,
        project_id: &'a str,
        billing_acct_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn add_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn remove_team_role<'a>(
        &'a self,
        env: &'a CloudEnv,
        role: TeamRole,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn change_team_role<'a>(
        &'a self,
        env: Option<&'a CloudEnv>,
        project_id: &'a str,
        user_id: &'a str,
        current: Role,
        new: Role,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn update_status<'a>(
        &'a self,
        env: &'a CloudEnv,
        kind: TargetKind,
        id: &'a str,
        action: PowerAction,
    ) -> BoxFuture<'a, CloudResult<StatusChange>>;

    fn create_key_pair<'a>(
        &'a self,
        env: &'a CloudEnv,
        key: NewKeyPair,
    ) -> BoxFuture<'a, CloudResult<KeyPairCreated>>;

    fn list_key_pairs<'a>(
        &'a self,
        env: &'a CloudEnv,
    ) -> BoxFuture<'a, CloudResult<Vec<KeyPairInfo>>>;

    fn delete_key_pair<'a>(
        &'a self,
        env: &'a CloudEnv,
        name: &'a str,
    ) -> BoxFuture<'a, CloudResult<()>>;

    fn draft_invoice<'a>(&'a self, billing_acct_id: &'a str)
        -> BoxFuture<'a, CloudResult<Invoice>>;

    fn list_invoices<'a>(
        &'a self,
        billing_acct_id: &'a str,
        offset: i64,
        limit: i64,
    ) -> BoxFuture<'a, CloudResult<InvoicePage>>;

    fn get_invoice<'a>(
        &'a self,
        billing_acct_id: &'a str,
        invoice_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<Invoice>>;

    /// Grants credits; returns the amount granted.
    fn add_credits<'a>(
        &'a self,
        billing_acct_id: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, CloudResult<Money>>;

    /// Credits left: granted − used on committed invoices − the running draft.
    fn get_credits<'a>(&'a self, billing_acct_id: &'a str) -> BoxFuture<'a, CloudResult<Money>>;

    /// `POST /create_order`: opens a cluster order on a billing account.
    fn create_order<'a>(
        &'a self,
        billing_acct_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::Order>>;

    /// `/delete_order`: cancels an order (kept, as Kill Bill keeps cancelled subscriptions).
    fn delete_order<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, CloudResult<()>>;

    /// `POST /add_order_tag`: sets a tag (`openstack_stack_id`, …) on an order.
    fn add_order_tag<'a>(
        &'a self,
        order_id: &'a str,
        name: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, CloudResult<crate::orders::OrderTag>>;

    /// `GET /statistics`: the cloud's capacity and use (hypervisor totals on OpenStack), as
    /// `{total_vcpus, used_vcpus, total_ram, used_ram, total_disk_space, used_disk_space,
    /// running_vms}` (RAM and disk in GB). The UI sends no body, so no `cloud_env`: the
    /// backend answers with its own credentials, as the original did.
    fn statistics<'a>(&'a self) -> BoxFuture<'a, CloudResult<serde_json::Value>> {
        Box::pin(async move { Err(not_here(self.name(), "statistics")) })
    }

    /// `GET /team/<project_id>/quotas`: a team's quotas.
    fn team_quotas<'a>(
        &'a self,
        _env: &'a CloudEnv,
        _project_id: &'a str,
    ) -> BoxFuture<'a, CloudResult<serde_json::Value>> {
        Box::pin(async move { Err(not_here(self.name(), "team quotas")) })
    }

    /// `GET /team/limits`: the limits and use of the caller's project, flat (Nova's and
    /// Cinder's `limits.absolute` keys merged).
    fn team_limits<'a>(
        &'a self,
        _env: &'a CloudEnv,
    ) -> BoxFuture<'a, CloudResult<serde_json::Value>> {
        Box::pin(async move { Err(not_here(self.name(), "team limits")) })
    }
}

/// 501: a route this backend does not offer.
fn not_here(backend: &str, what: &str) -> crate::error::CloudError {
    crate::error::CloudError::Status {
        status: 501,
        kind: "NotImplemented",
        message: format!("the {backend} backend does not offer {what}"),
    }
}
