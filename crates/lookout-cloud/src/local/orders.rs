//! The local backend's side of cluster orders: the account check and ids; the store work is
//! in [`crate::orders`], shared with the OpenStack backend through its ledger.

use super::{new_id, new_uuid, LocalBackend};
use crate::error::CloudResult;
use crate::orders::{self, Order, OrderTag};

impl LocalBackend {
    pub(crate) async fn do_create_order(&self, acct: &str) -> CloudResult<Order> {
        crate::ids::check("order.billing_account_id", acct)?;
        let team = self.team_by_account(acct).await?;
        // Kill Bill's subscription ids are UUIDs; the cluster builder stores them as strings.
        let order = orders::create(
            &self.db,
            &team.id,
            &team.billing_acct_id,
            new_uuid(),
            self.now_ms() / 1000,
        )
        .await?;
        self.changes.notify_one();
        Ok(order)
    }

    pub(crate) async fn do_delete_order(&self, order_id: &str) -> CloudResult<()> {
        crate::ids::check("order.order_id", order_id)?;
        orders::cancel(&self.db, order_id, self.now_ms() / 1000).await?;
        self.changes.notify_one();
        Ok(())
    }

    pub(crate) async fn do_add_order_tag(
        &self,
        order_id: &str,
        name: &str,
        value: &str,
    ) -> CloudResult<OrderTag> {
        crate::ids::check("tag.order_id", order_id)?;
        orders::tag(
            &self.db,
            order_id,
            name,
            value,
            new_id(),
            self.now_ms() / 1000,
        )
        .await
        .inspect(|_| self.changes.notify_one())
    }
}

impl LocalBackend {
    /// Rack (stack) id → name, from the team's orders that carry both tags.
    pub(crate) async fn stack_names(
        &self,
        team_id: &str,
    ) -> CloudResult<std::collections::BTreeMap<String, String>> {
        Ok(orders::stacks_of_team(&self.db, team_id)
            .await?
            .into_iter()
            .filter_map(|s| Some((s.stack_id, s.stack_name?)))
            .collect())
    }
}
