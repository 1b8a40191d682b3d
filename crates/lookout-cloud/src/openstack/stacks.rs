//! Which Heat stack (Concertim rack) each server belongs to, so that a team's costs are
//! billed per rack as the UI's "Rack costs" reads them. The stacks are the ones the cluster
//! builder tagged its orders with (`openstack_stack_id`); their servers are the stack's
//! `OS::Nova::Server` resources, nested stacks included.

use std::collections::HashMap;

use reqwest::Method;

use super::client::{self, Session};
use super::{OpenStackBackend, ServerUsage};
use crate::error::CloudResult;
use crate::metering::{ResourceKind, Usage};

/// How deep Heat looks into nested stacks (a cluster type's components are nested stacks).
const NESTED_DEPTH: u32 = 5;

/// One usage line to store: a rack (stack) or a server outside every tagged stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    pub kind: ResourceKind,
    pub id: String,
    pub name: String,
    pub usage: Usage,
}

/// Folds servers into their stacks; servers of no known stack stay device lines.
pub fn group_by_stack(
    servers: &[ServerUsage],
    stack_of: &HashMap<String, (String, String)>,
) -> Vec<StoredLine> {
    let mut out: Vec<StoredLine> = Vec::new();
    for u in servers {
        let usage = Usage {
            cpu_core_ms: u.cpu_core_ms,
            mem_mib_ms: u.mem_mib_ms,
            running_ms: u.running_ms,
            disk_gib_ms: u.disk_gib_ms,
        };
        let (kind, id, name) = match stack_of.get(&u.instance_id) {
            Some((sid, sname)) => (ResourceKind::Rack, sid.clone(), sname.clone()),
            None => (ResourceKind::Device, u.instance_id.clone(), u.name.clone()),
        };
        match out.iter_mut().find(|l| l.kind == kind && l.id == id) {
            Some(l) => l.usage.add(&usage),
            None => out.push(StoredLine {
                kind,
                id,
                name,
                usage,
            }),
        }
    }
    out
}

impl OpenStackBackend {
    /// Server id → (stack id, stack name) for the stacks the team's orders are tagged with.
    /// A stack Heat no longer knows (deleted) maps nothing: its servers, if still billed,
    /// stay device lines.
    pub(super) async fn server_stacks(
        &self,
        s: &Session,
        project_id: &str,
    ) -> CloudResult<HashMap<String, (String, String)>> {
        let mut map = HashMap::new();
        for st in crate::orders::stacks_of_team(&self.db, project_id).await? {
            let found = match self
                .os
                .call(
                    s,
                    "orchestration",
                    Method::GET,
                    &format!("/stacks/{}", client::seg(&st.stack_id)?),
                    None,
                    None,
                )
                .await
            {
                Ok(r) => r,
                Err(crate::error::CloudError::NotFound(_)) => continue,
                Err(e) if e.http_status() == 404 => continue,
                Err(e) => return Err(e),
            };
            let stack = &found.body["stack"];
            let (Some(sid), Some(sname)) = (stack["id"].as_str(), stack["stack_name"].as_str())
            else {
                continue;
            };
            let name = st.stack_name.clone().unwrap_or_else(|| sname.to_string());
            let r = self
                .os
                .call(
                    s,
                    "orchestration",
                    Method::GET,
                    &format!(
                        "/stacks/{}/{}/resources?nested_depth={NESTED_DEPTH}",
                        client::seg(sname)?,
                        client::seg(sid)?
                    ),
                    None,
                    None,
                )
                .await?;
            for res in r.body["resources"].as_array().into_iter().flatten() {
                if res["resource_type"] != "OS::Nova::Server" {
                    continue;
                }
                if let Some(server) = res["physical_resource_id"]
                    .as_str()
                    .filter(|v| !v.is_empty())
                {
                    map.insert(server.to_string(), (st.stack_id.clone(), name.clone()));
                }
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, ms: i64) -> ServerUsage {
        ServerUsage {
            instance_id: id.into(),
            name: format!("vm-{id}"),
            running_ms: ms,
            cpu_core_ms: 2 * ms,
            mem_mib_ms: 1024 * ms,
            disk_gib_ms: 10 * ms,
        }
    }

    #[test]
    fn servers_fold_into_their_stack_and_loose_ones_stay() {
        let stacks = HashMap::from([
            ("a".to_string(), ("st1".to_string(), "web".to_string())),
            ("b".to_string(), ("st1".to_string(), "web".to_string())),
        ]);
        let lines = group_by_stack(&[server("a", 10), server("b", 5), server("c", 1)], &stacks);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].kind, ResourceKind::Rack);
        assert_eq!(
            (lines[0].id.as_str(), lines[0].name.as_str()),
            ("st1", "web")
        );
        assert_eq!(lines[0].usage.running_ms, 15);
        assert_eq!(lines[0].usage.cpu_core_ms, 30);
        assert_eq!(lines[1].kind, ResourceKind::Device);
        assert_eq!(lines[1].id, "c");
    }
}
