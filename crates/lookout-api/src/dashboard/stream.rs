//! The live stream: one encoder task per server turns each new snapshot into one SSE frame,
//! and every client gets that same frame from a bounded broadcast ring.
//!
//! - Fed by the sampler's `watch` channel: nothing polls the sampler, and a snapshot is
//!   serialised once per tick however many clients listen (and not at all when none do).
//! - Bounded: each client is at most [`RING`] frames behind; a client that falls further
//!   behind (a slow reader) is dropped, never waited for; its browser reconnects by itself.
//! - Every stream re-checks its credential each tick and ends at the first tick after it is
//!   revoked: the session of a cookie-authenticated stream, the token of a Bearer one.

use std::sync::{Arc, Mutex, OnceLock};

use axum::body::{Body, Bytes};
use tokio::sync::{broadcast, watch};

use lookout_probe::Snapshot;

use super::session::{SessionKey, SessionStore};
use crate::auth::SharedTokens;

/// What a stream was opened with, checked again before every frame.
pub enum Credential {
    /// A dashboard session cookie (ends on sign-out, expiry, or its token's revocation).
    Session(Arc<SessionStore>, SessionKey),
    /// A Bearer token, by its SHA-256 (ends when the token file no longer holds it).
    Token(SharedTokens, [u8; 32]),
    /// Authentication is turned off by configuration.
    None,
}

impl Credential {
    fn still_valid(&self) -> bool {
        match self {
            Credential::Session(store, key) => store.is_live(key),
            Credential::Token(tokens, sha) => tokens.current().verify_hash(sha).is_some(),
            Credential::None => true,
        }
    }
}

/// Frames a client may lag behind before it is dropped.
pub const RING: usize = 8;

#[derive(Default)]
pub struct Hub {
    tx: OnceLock<broadcast::Sender<Frame>>,
    /// The latest frame, so a new client starts with figures at once.
    last: Arc<Mutex<Option<(u64, Bytes)>>>,
}

/// A frame and the tick it carries (a client never gets a tick twice).
pub type Frame = (u64, Bytes);

/// One SSE frame for a snapshot.
pub fn frame(s: &Snapshot) -> Bytes {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: snapshot\nid: {}\ndata: {json}\n\n", s.tick))
}

impl Hub {
    fn sender(
        &self,
        snapshots: &watch::Receiver<Option<Arc<Snapshot>>>,
    ) -> broadcast::Sender<Frame> {
        self.tx
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(RING);
                let mut rx = snapshots.clone();
                let out = tx.clone();
                let last = self.last.clone();
                tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let snap = rx.borrow_and_update().clone();
                        let Some(snap) = snap else { continue };
                        if out.receiver_count() == 0 {
                            continue;
                        }
                        let f = frame(&snap);
                        if let Ok(mut l) = last.lock() {
                            *l = Some((snap.tick, f.clone()));
                        }
                        let _ = out.send((snap.tick, f));
                    }
                });
                tx
            })
            .clone()
    }

    /// Subscribes a client: its first frame (the current snapshot) and its receiver.
    pub fn subscribe(
        &self,
        snapshots: &watch::Receiver<Option<Arc<Snapshot>>>,
    ) -> (Option<Frame>, broadcast::Receiver<Frame>) {
        let rx = self.sender(snapshots).subscribe();
        let current = snapshots.borrow().clone();
        let first = current.map(|s| {
            let cached = self.last.lock().ok().and_then(|l| {
                l.as_ref()
                    .filter(|(t, _)| *t == s.tick)
                    .map(|(_, f)| f.clone())
            });
            (s.tick, cached.unwrap_or_else(|| frame(&s)))
        });
        (first, rx)
    }

    pub fn clients(&self) -> usize {
        self.tx.get().map_or(0, |t| t.receiver_count())
    }
}

/// The response body of one client's stream.
pub fn body(first: Option<Frame>, rx: broadcast::Receiver<Frame>, credential: Credential) -> Body {
    struct St {
        pending: Vec<Bytes>,
        sent: u64,
        rx: broadcast::Receiver<Frame>,
        credential: Credential,
    }
    let mut pending = vec![Bytes::from_static(b"retry: 2000\n\n")];
    let sent = first.as_ref().map_or(0, |f| f.0);
    pending.extend(first.map(|f| f.1));
    pending.reverse();
    let st = St {
        pending,
        sent,
        rx,
        credential,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(b) = st.pending.pop() {
            return Some((Ok::<_, std::io::Error>(b), st));
        }
        loop {
            match st.rx.recv().await {
                Ok((tick, b)) => {
                    if !st.credential.still_valid() {
                        return None;
                    }
                    if tick <= st.sent {
                        continue;
                    }
                    st.sent = tick;
                    return Some((Ok(b), st));
                }
                // Lagged: a slow client, dropped rather than waited for. Closed: shutting down.
                Err(_) => return None,
            }
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use lookout_probe::{ContainersView, HostSnapshot};

    fn snap(tick: u64) -> Option<Arc<Snapshot>> {
        Some(Arc::new(Snapshot {
            taken_at_ms: tick as i64 * 1000,
            tick,
            host: HostSnapshot::default(),
            containers: ContainersView::Available { containers: vec![] },
            gpu: Default::default(),
            processes: None,
        }))
    }

    async fn next_text(s: &mut axum::body::BodyDataStream) -> Option<String> {
        let b = tokio::time::timeout(std::time::Duration::from_secs(2), s.next())
            .await
            .ok()??
            .ok()?;
        Some(String::from_utf8_lossy(&b).into_owned())
    }

    #[tokio::test]
    async fn each_tick_once_in_order_and_slow_clients_are_dropped() {
        let (tx, rx) = watch::channel(snap(1));
        let hub = Hub::default();
        let (first, sub) = hub.subscribe(&rx);
        let mut fast = body(first, sub, Credential::None).into_data_stream();
        assert!(next_text(&mut fast).await.unwrap().starts_with("retry:"));
        assert!(next_text(&mut fast).await.unwrap().contains("id: 1\n"));
        let (_, slow_rx) = hub.subscribe(&rx);
        let mut slow = body(None, slow_rx, Credential::None).into_data_stream();
        assert_eq!(hub.clients(), 2);
        for t in 2..=(RING as u64 + 6) {
            tx.send(snap(t)).unwrap();
            let got = next_text(&mut fast).await.unwrap();
            assert!(got.contains(&format!("id: {t}\n")), "{got}");
        }
        // The slow client fell more than RING frames behind: it ends instead of being waited for.
        assert!(next_text(&mut slow).await.unwrap().starts_with("retry:"));
        assert!(
            next_text(&mut slow).await.is_none(),
            "a lagging client must be dropped"
        );
    }

    #[tokio::test]
    async fn revoked_session_ends_its_stream() {
        let (tx, rx) = watch::channel(snap(1));
        let hub = Hub::default();
        let store = Arc::new(SessionStore::default());
        let s = store
            .create(crate::auth::Principal {
                name: "a".into(),
                scope: crate::auth::Scope::Read,
                token_sha256: [1; 32],
            })
            .unwrap();
        let (_, auth) = store.lookup(&s.cookie_value).unwrap();
        let (first, sub) = hub.subscribe(&rx);
        let mut st =
            body(first, sub, Credential::Session(store.clone(), auth.key)).into_data_stream();
        next_text(&mut st).await.unwrap();
        next_text(&mut st).await.unwrap();
        tx.send(snap(2)).unwrap();
        assert!(next_text(&mut st).await.unwrap().contains("id: 2\n"));
        store.revoke(&auth.key);
        tx.send(snap(3)).unwrap();
        assert!(next_text(&mut st).await.is_none());
    }

    #[tokio::test]
    async fn revoked_bearer_token_ends_its_stream() {
        let (tx, rx) = watch::channel(snap(1));
        let hub = Hub::default();
        let token = "lk_stream-test-token-0123456789abcdef";
        let tokens = SharedTokens::new(crate::auth::TokenSet::default().with_static(
            "t",
            token,
            crate::auth::Scope::Read,
        ));
        let (first, sub) = hub.subscribe(&rx);
        let cred = Credential::Token(tokens.clone(), crate::auth::hash_token(token));
        let mut st = body(first, sub, cred).into_data_stream();
        next_text(&mut st).await.unwrap();
        next_text(&mut st).await.unwrap();
        tx.send(snap(2)).unwrap();
        assert!(next_text(&mut st).await.unwrap().contains("id: 2\n"));
        tokens.replace(crate::auth::TokenSet::default());
        tx.send(snap(3)).unwrap();
        assert!(next_text(&mut st).await.is_none());
    }
}
