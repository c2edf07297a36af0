//! Runtime wiring every credit service shares: configuration, telemetry, metrics, identity,
//! store connections, the gRPC server and TLS.

pub mod admission;
pub mod approval_wire;
pub mod audit;
pub mod auth;
pub mod config;
pub mod deadline;
pub mod events;
pub mod freshness_wire;
pub mod identity;
pub mod metrics;
pub mod operations;
pub mod peers;
pub mod rpc_path;
pub mod server;
pub mod sql;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod tls;

pub use auth::principal;
pub use config::{Backend, ConfigError, Settings, TlsSettings};
pub use server::{BoundServer, Dependency, Listeners, ServerParts};
pub use storage::{Database, RedisHandle, StoreSpec};
