//! Domain types shared by every backend.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{CloudError, CloudResult};
use crate::metering::Usage;
use crate::money::Money;

/// Keystone v3 password credentials, as Concertim sends them in `cloud_env`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudEnv {
    pub auth_url: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub password: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_domain_name: Option<String>,
}

impl std::fmt::Debug for CloudEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudEnv")
            .field("auth_url", &self.auth_url)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("project_name", &self.project_name)
            .finish()
    }
}

/// A team role. Watchers may look, not act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    Watcher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Watcher => "watcher",
        }
    }

    pub fn parse(field: &str, s: &str) -> CloudResult<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "watcher" => Ok(Role::Watcher),
            other => Err(CloudError::invalid(
                field,
                format!("{other:?} is not a role (admin, member, watcher)"),
            )),
        }
    }
}

#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("name", &self.name)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedUser {
    pub username: String,
    pub user_cloud_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedTeam {
    pub project_id: String,
    pub billing_acct_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRole {
    pub project_id: String,
    pub user_id: String,
    pub role: Role,
}

/// What `update_status` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A server (a container on the local backend). `instances` is an alias.
    Device,
    /// A group of devices (a compose project or `lookout.rack` on the local backend).
    Rack,
    /// A block-storage volume (a Docker volume on the local backend, Cinder on OpenStack).
    Volume,
    /// A network (a Docker network on the local backend, Neutron on OpenStack).
    Network,
}

impl TargetKind {
    pub fn parse(s: &str) -> CloudResult<TargetKind> {
        match s {
            "devices" | "instances" => Ok(TargetKind::Device),
            "racks" => Ok(TargetKind::Rack),
            "volumes" => Ok(TargetKind::Volume),
            "networks" => Ok(TargetKind::Network),
            other => Err(CloudError::InvalidCall(format!(
                "no such object type {other:?} (devices, instances, racks, volumes, networks)"
            ))),
        }
    }
}

/// A power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Suspend,
    Resume,
    Destroy,
}

impl PowerAction {
    /// Parses an action valid for `kind`: devices take on/off/suspend/resume/destroy, racks
    /// suspend/resume/destroy, volumes and networks only destroy (the UI offers nothing
    /// else for them).
    pub fn parse(kind: TargetKind, s: &str) -> CloudResult<PowerAction> {
        let a = match s {
            "on" => PowerAction::On,
            "off" => PowerAction::Off,
            "suspend" => PowerAction::Suspend,
            "resume" => PowerAction::Resume,
            "destroy" => PowerAction::Destroy,
            other => {
                return Err(CloudError::InvalidCall(format!(
                    "no such action {other:?} (on, off, suspend, resume, destroy)"
                )))
            }
        };
        if kind == TargetKind::Rack && matches!(a, PowerAction::On | PowerAction::Off) {
            return Err(CloudError::InvalidCall(format!(
                "racks take suspend, resume or destroy, not {s:?}"
            )));
        }
        if matches!(kind, TargetKind::Volume | TargetKind::Network) && a != PowerAction::Destroy {
            return Err(CloudError::InvalidCall(format!(
                "volumes and networks take only destroy, not {s:?}"
            )));
        }
        Ok(a)
    }
}

/// The reply of `update_status`: `{submitted, request_ids}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    pub submitted: bool,
    pub request_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewKeyPair {
    pub name: String,
    pub key_type: Option<String>,
    /// Import this public key instead of generating a pair.
    pub public_key: Option<String>,
}

/// A key pair as created (the private key only here, once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPairCreated {
    pub id: String,
    pub name: String,
    pub private_key: Option<String>,
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPairInfo {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub key_type: String,
}

/// `DRAFT` for the running month, `COMMITTED` once the period closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InvoiceStatus {
    Draft,
    Committed,
}

/// `cost` (a rack or device's usage) or `credits` (granted or spent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    Cost,
    Credits,
}

/// Usage figures shown with a cost item (informational; money is computed from the exact
/// integer usage, never from these).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct UsageSummary {
    pub cpu_core_hours: f64,
    pub memory_gb_hours: f64,
    pub running_hours: f64,
    pub disk_gb_hours: f64,
}

impl From<&Usage> for UsageSummary {
    fn from(u: &Usage) -> Self {
        let r = |v: f64| (v * 1e6).round() / 1e6;
        Self {
            cpu_core_hours: r(u.cpu_core_hours()),
            memory_gb_hours: r(u.memory_gb_hours()),
            running_hours: r(u.running_hours()),
            disk_gb_hours: r(u.disk_gb_hours()),
        }
    }
}

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct InvoiceItem {
    pub item_id: String,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// Kill Bill's item type, which the UI also reads: `USAGE` or `CREDIT_ADJ`.
    #[serde(rename = "item_type")]
    pub billing_item_type: String,
    pub description: String,
    #[serde(with = "money_serde")]
    pub amount: Money,
    pub currency: String,
    pub start_date: String,
    pub end_date: String,
    /// `rack` or `device` (cost items).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rack_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device_id: Option<String>,
    /// The devices a line for devices outside any rack gathers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub device_ids: Option<Vec<String>>,
    /// The UI's names for the rack a cost item belongs to (a Heat stack on OpenStack).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub openstack_stack_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub openstack_stack_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage: Option<UsageSummary>,
}

/// An invoice. `items` serialises as an object keyed by `item_id`, which is how the
/// Concertim UI iterates it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invoice {
    pub invoice_id: String,
    pub account_id: String,
    pub invoice_number: Option<i64>,
    pub invoice_date: String,
    pub target_date: String,
    /// Sum of the cost items.
    pub amount: Money,
    /// Credits used on this invoice, negative (Kill Bill's sign).
    pub credit_adj: Money,
    pub refund_adj: Money,
    /// What remains due: amount + credit_adj.
    pub balance: Money,
    pub currency: String,
    pub status: InvoiceStatus,
    pub draft: bool,
    #[serde(serialize_with = "items_by_id")]
    pub items: Vec<InvoiceItem>,
}

fn items_by_id<S: serde::Serializer>(items: &[InvoiceItem], s: S) -> Result<S::Ok, S::Error> {
    let map: BTreeMap<&str, &InvoiceItem> = items.iter().map(|i| (i.item_id.as_str(), i)).collect();
    map.serialize(s)
}

/// Serialises [`Money`] as an exact JSON number and reads it back from minor units.
pub mod money_serde {
    use crate::money::Money;

    pub fn serialize<S: serde::Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(m, s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
        Money::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// One page of invoices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoicePage {
    pub total_invoices: i64,
    pub invoices: Vec<Invoice>,
}
