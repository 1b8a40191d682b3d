//! What a JWT holder can make the Concertim listener do with crafted input (issue 13
//! findings 7 and 8): `.`/`..`/empty/over-long ids are refused with a 400 JSON before any
//! backend call, on both backends; `cloud_env.auth_url` outside the allow-list is refused
//! before any request leaves; and a page an allowed URL answers with is never echoed.
//! The "internal page" is a real HTTP server on loopback that counts what reaches it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use common::*;

const SECRET_PAGE: &str = "<html><body>INTERNAL-ONLY: db password hunter2</body></html>";

/// A loopback HTTP server answering every request with one fixed response, counting them.
struct InternalPage {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl InternalPage {
    fn start(status: u16, content_type: &'static str, extra_header: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = answer(stream, status, content_type, extra_header);
            }
        });
        Self { port, hits }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v3", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(
    stream: TcpStream,
    status: u16,
    content_type: &str,
    extra_header: &str,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra_header}Content-Length: {}\r\nConnection: close\r\n\r\n{SECRET_PAGE}",
        SECRET_PAGE.len()
    )
}

/// Sends a request with its path exactly as given (reqwest would resolve `%2E%2E`).
fn raw_request(base: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let body = body.to_string();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        concertim_token(),
        body.len()
    )
    .expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn env_for(auth_url: &str) -> Value {
    json!({"auth_url": auth_url, "user_id": "u1", "password": "p", "project_id": "p1"})
}

/// Every way a crafted id reaches a route: the path, and each id field of a body.
fn hostile_cases(auth_url: &str) -> Vec<(&'static str, String, Value, &'static str)> {
    let env = env_for(auth_url);
    let long = "x".repeat(300);
    let mut cases = Vec::new();
    for id in ["%2E%2E", "..", "%2e", "."] {
        cases.push((
            "POST",
            format!("/update_status/devices/{id}"),
            json!({"cloud_env": env, "action": "off"}),
            "`id`",
        ));
    }
    cases.push((
        "POST",
        format!("/update_status/devices/{long}"),
        json!({"cloud_env": env, "action": "off"}),
        "`id`",
    ));
    cases.push((
        "GET",
        "/team/%2E%2E/quotas".to_string(),
        json!({"cloud_env": env}),
        "`project_id`",
    ));
    for name in ["..", ".", "", long.as_str()] {
        cases.push((
            "POST",
            "/key_pairs".to_string(),
            json!({"cloud_env": env, "key_pair": {"name": name}}),
            "`key_pair.name`",
        ));
        cases.push((
            "DELETE",
            "/key_pairs".to_string(),
            json!({"cloud_env": env, "keypair_name": name}),
            "`keypair_name`",
        ));
    }
    cases.push((
        "DELETE",
        "/user".to_string(),
        json!({"cloud_env": env, "user_info": {"cloud_user_id": ".."}}),
        "`user_info.cloud_user_id`",
    ));
    cases.push((
        "POST",
        "/team_role".to_string(),
        json!({"cloud_env": env, "team_role": {"project_id": "..", "user_id": "u", "role": "member"}}),
        "`team_role.project_id`",
    ));
    cases.push((
        "DELETE",
        "/team".to_string(),
        json!({"cloud_env": env, "team_info": {"project_id": "p", "billing_acct_id": ".."}}),
        "`team_info.billing_acct_id`",
    ));
    cases.push((
        "POST",
        "/get_account_invoice".to_string(),
        json!({"invoice": {"billing_acct_id": "a", "invoice_id": ".."}}),
        "`invoice.invoice_id`",
    ));
    cases
}

fn assert_refused(lk: &ConcertimLookout, auth_url: &str) {
    for (method, path, body, field) in hostile_cases(auth_url) {
        let (status, v) = raw_request(&lk.base, method, &path, &body);
        let what = format!("{method} {path} {body}");
        assert_eq!(status, 400, "{what}: {v}");
        assert_eq!(v["success"], false, "{what}: {v}");
        assert_eq!(v["error"], "InvalidArguments", "{what}: {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{what}: {message}");
    }
}

#[test]
fn dot_and_overlong_ids_are_refused_on_the_local_backend() {
    let lk = ConcertimLookout::start_with(&[("LOOKOUT_SAMPLING__DOCKER", "false")]);
    assert_refused(&lk, "http://127.0.0.1:1/v3");
}

#[test]
fn dot_and_overlong_ids_never_reach_openstack() {
    let keystone = InternalPage::start(500, "text/html", "");
    let lk = ConcertimLookout::start_with(&[
        ("LOOKOUT_SAMPLING__DOCKER", "false"),
        ("LOOKOUT_CONCERTIM__BACKEND", "openstack"),
        (
            "LOOKOUT_CONCERTIM__OPENSTACK__ALLOWED_AUTH_URLS",
            &format!("[\"{}\"]", keystone.url()),
        ),
    ]);
    assert_refused(&lk, &keystone.url());
    assert_eq!(keystone.hits(), 0, "a refused request reached the cloud");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_urls_outside_the_allow_list_are_never_called() {
    let service = InternalPage::start(503, "text/html", "");
    let internal = InternalPage::start(200, "text/html", "");
    let lk = ConcertimLookout::start_with(&[
        ("LOOKOUT_SAMPLING__DOCKER", "false"),
        ("LOOKOUT_CONCERTIM__BACKEND", "openstack"),
        ("LOOKOUT_CONCERTIM__OPENSTACK__AUTH_URL", &service.url()),
        ("LOOKOUT_CONCERTIM__OPENSTACK__USERNAME", "admin"),
        ("LOOKOUT_CONCERTIM__OPENSTACK__PASSWORD", "secret"),
    ]);
    let c = client();
    let token = concertim_token();
    // The internal page, another port on loopback, and a host by another spelling.
    for url in [
        internal.url(),
        format!("http://127.0.0.1:{}/", internal.port),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let body = json!({"cloud_env": env_for(&url)});
        let (status, v) =
            concertim_call(&c, Method::GET, &lk.url("/key_pairs"), Some(&token), &body).await;
        assert!(status == 403 || status == 400, "{url}: {status} {v}");
        assert_eq!(v["success"], false, "{url}: {v}");
        if status == 403 {
            assert_eq!(v["error"], "Forbidden", "{url}: {v}");
            let message = v["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("concertim.openstack.allowed_auth_urls"),
                "{url}: the refusal does not name the key to set: {message}"
            );
        }
    }
    assert_eq!(
        internal.hits(),
        0,
        "lookout called a URL outside the allow-list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_from_an_allowed_url_are_never_echoed() {
    // Each status a Keystone stand-in may answer with, its body an internal HTML page.
    let pages = [
        InternalPage::start(500, "text/html", ""),
        InternalPage::start(401, "text/html", ""),
        InternalPage::start(404, "text/plain", ""),
        InternalPage::start(201, "text/html", "X-Subject-Token: t\r\n"),
    ];
    let allowed = format!(
        "[{}]",
        pages
            .iter()
            .map(|p| format!("\"{}\"", p.url()))
            .collect::<Vec<_>>()
            .join(",")
    );
    let lk = ConcertimLookout::start_with(&[
        ("LOOKOUT_SAMPLING__DOCKER", "false"),
        ("LOOKOUT_CONCERTIM__BACKEND", "openstack"),
        ("LOOKOUT_CONCERTIM__OPENSTACK__ALLOWED_AUTH_URLS", &allowed),
    ]);
    let c = client();
    let token = concertim_token();
    for page in &pages {
        let body = json!({"cloud_env": env_for(&page.url())});
        let (status, v) =
            concertim_call(&c, Method::GET, &lk.url("/key_pairs"), Some(&token), &body).await;
        assert_eq!(
            page.hits(),
            1,
            "the allowed URL {} was not called",
            page.url()
        );
        assert!(status >= 400, "{status} {v}");
        assert_eq!(v["success"], false, "{v}");
        let text = v.to_string();
        assert!(
            !text.contains("INTERNAL-ONLY") && !text.contains("hunter2") && !text.contains("<html"),
            "the upstream page was echoed: {text}"
        );
        assert!(
            v["message"].as_str().unwrap_or_default().len() < 300,
            "{text}"
        );
    }
}
