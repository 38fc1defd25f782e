//! A local HTTP server standing in for a provider's API: records every request and answers
//! with whatever the test's responder returns.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    /// Form fields, decoded, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
    pub fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// What the responder returns: status, content type, body.
pub type Answer = (u16, &'static str, String);

type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

pub struct MockHttp {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MockHttp {
    /// Starts a server on a free loopback port, on the shared test runtime.
    pub fn start(responder: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> MockHttp {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let responder: Responder = Arc::new(responder);
        let s2 = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = s2.clone();
                let responder = responder.clone();
                async move {
                    let req = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        headers,
                        body: body.to_vec(),
                    };
                    let (status, ctype, body) = responder(&req);
                    seen.lock().unwrap().push(req);
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [(axum::http::header::CONTENT_TYPE, ctype)],
                        body,
                    )
                        .into_response()
                }
            },
        );
        let listener = super::reqwest::block_on(async {
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
        });
        let addr = listener.local_addr().unwrap();
        super::reqwest::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockHttp { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to `path`, waiting up to `timeout` for at least `n`.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Seen> {
        let end = Instant::now() + timeout;
        loop {
            let got: Vec<Seen> = self.seen().into_iter().filter(|s| s.path == path).collect();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}
