//! Which container a process runs in, from the text of `/proc/<pid>/cgroup`: pure functions.
//!
//! Layouts recognised (cgroup v2 `0::<path>` lines and v1 `<n>:<controllers>:<path>` lines):
//! - Docker, cgroupfs driver: `/docker/<id>`; systemd driver: `/system.slice/docker-<id>.scope`
//!   (also with a nested `/init.scope` when the container runs systemd);
//! - containerd: `/<namespace>/<id>` (nerdctl, ctr), `nerdctl-<id>.scope`;
//! - Kubernetes: `/kubepods/<qos>/pod<uid>/<id>` (cgroupfs), and the systemd slices
//!   `kubepods-<qos>-pod<uid>.slice/{cri-containerd,crio,docker}-<id>.scope`;
//! - Podman: `/machine.slice/libpod-<id>.scope[/container]`, rootless under `user.slice`,
//!   and `/libpod_parent/libpod-<id>` (cgroupfs). conmon's own scopes are not containers.
//!
//! Container ids are 64 hex digits; nothing shorter is taken for one.

/// The runtime a cgroup path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
    /// A kubepods cgroup that does not say which runtime made it.
    Kubernetes,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
        }
    }
}

/// A container found in a cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub runtime: Runtime,
    /// 64 lowercase hex digits.
    pub id: String,
    pub pod_uid: Option<String>,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<prefix><id><suffix>` with a 64-hex id, e.g. `docker-<id>.scope`.
fn strip_id<'a>(component: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = component.strip_prefix(prefix)?.strip_suffix(suffix)?;
    is_container_id(id).then_some(id)
}

/// A pod UID from `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice`.
fn pod_uid(component: &str) -> Option<String> {
    let raw = if let Some(rest) = component.strip_prefix("kubepods") {
        let rest = rest.strip_suffix(".slice")?;
        let at = rest.rfind("-pod")?;
        &rest[at + 4..]
    } else {
        component.strip_prefix("pod")?
    };
    let uid = raw.replace('_', "-");
    (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

/// The container one cgroup path names, the outermost one where containers nest (that is
/// the one the host's container engine lists).
pub fn container_from_path(path: &str) -> Option<ContainerRef> {
    let mut kube = false;
    let mut pod: Option<String> = None;
    let mut parent = "";
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if component.starts_with("kubepods") {
            kube = true;
        }
        if kube {
            if let Some(uid) = pod_uid(component) {
                pod = Some(uid);
            }
        }
        let found = if let Some(id) = strip_id(component, "docker-", ".scope") {
            Some((Runtime::Docker, id))
        } else if let Some(id) = strip_id(component, "cri-containerd-", ".scope") {
            Some((Runtime::Containerd, id))
        } else if let Some(id) = strip_id(component, "crio-", ".scope") {
            Some((Runtime::CriO, id))
        } else if let Some(id) =
            strip_id(component, "libpod-", ".scope").or_else(|| strip_id(component, "libpod-", ""))
        {
            Some((Runtime::Podman, id))
        } else if let Some(id) = strip_id(component, "nerdctl-", ".scope") {
            Some((Runtime::Containerd, id))
        } else if is_container_id(component) {
            let runtime = match parent {
                "docker" | "moby" => Runtime::Docker,
                _ if kube => Runtime::Kubernetes,
                _ => Runtime::Containerd,
            };
            Some((runtime, component))
        } else {
            None
        };
        if let Some((runtime, id)) = found {
            return Some(ContainerRef {
                runtime,
                id: id.to_ascii_lowercase(),
                pod_uid: pod,
            });
        }
        parent = component;
    }
    None
}

/// The container a process runs in, from the whole text of its `/proc/<pid>/cgroup`, and
/// the cgroup path that named it. The v2 line is looked at first, then the v1 lines in order.
pub fn container_from_cgroup_file(text: &str) -> Option<(ContainerRef, String)> {
    let mut v1 = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if hier == "0" && controllers.is_empty() {
            if let Some(c) = container_from_path(path) {
                return Some((c, path.to_string()));
            }
        } else {
            v1.push(path);
        }
    }
    v1.into_iter()
        .find_map(|p| container_from_path(p).map(|c| (c, p.to_string())))
}

/// The process's cgroup path to show: the v2 path, else the first non-root v1 path.
pub fn display_path(text: &str) -> Option<String> {
    let mut first_v1 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if hier == "0" && controllers.is_empty() && path != "/" {
            return Some(path.to_string());
        }
        if first_v1.is_none() && path != "/" {
            first_v1 = Some(path.to_string());
        }
    }
    first_v1
}
