//! The HTTP server. Our own accept loop over hyper (rather than `axum::serve`) so that the
//! fault injector can drop a connection without writing any answer, as a crashed or
//! overloaded platform front end would.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sop_clock::{Clock, SystemClock, VirtualClock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::Config;
use crate::faults::{ResetConnection, intercept};
use crate::{douyin, inspect, shop, traffic, wecom};

/// Which clock the emulator runs on.
#[derive(Debug, Clone)]
pub enum ClockChoice {
    /// Wall time.
    System,
    /// Time moved by the test (or by `POST /_emulator/clock`); clones share the time.
    Manual(VirtualClock),
}

/// A running emulator.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for in-process inspection.
    pub app: App,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    traffic: JoinHandle<()>,
}

impl Running {
    /// `http://addr`, the base URL to point clients at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections and stop the traffic generator.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.traffic.abort();
        let _ = (&mut self.server).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.traffic.abort();
        self.server.abort();
    }
}

/// All routes (fault injection runs in front of them, in the accept loop).
pub fn router(app: App) -> Router {
    Router::new()
        .merge(wecom::router())
        .merge(douyin::router())
        .merge(shop::router())
        .merge(inspect::router())
        .with_state(app)
}

/// Start the emulator on `listen` (port 0 picks a free port).
pub async fn start(
    config: Config,
    clock: ClockChoice,
    listen: SocketAddr,
) -> Result<Running, String> {
    let (clock, manual): (Arc<dyn Clock>, _) = match clock {
        ClockChoice::System => (Arc::new(SystemClock), None),
        ClockChoice::Manual(m) => (Arc::new(m.clone()), Some(m)),
    };
    let app = App::new(config, clock, manual)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(serve(listener, app.clone(), rx));
    let traffic = traffic::spawn(app.clone());
    Ok(Running {
        addr,
        app,
        shutdown: Some(tx),
        server,
        traffic,
    })
}

async fn serve(listener: TcpListener, app: App, mut shutdown: oneshot::Receiver<()>) {
    let router = router(app.clone());
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tower = TowerToHyperService::new(router.clone());
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let tower = tower.clone();
                let app = app.clone();
                async move {
                    let resp = match intercept(&app, req.uri().path()).await {
                        Some(r) => r,
                        None => match tower.call(req).await {
                            Ok(r) => r.map(Body::new),
                            Err(never) => match never {},
                        },
                    };
                    if resp.extensions().get::<ResetConnection>().is_some() {
                        // A service error makes hyper close the connection without answering.
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "injected reset",
                        ));
                    }
                    Ok::<_, io::Error>(resp)
                }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
