//! The `credit.v1` contract, generated from `proto/credit/v1` at build time.

/// Messages, enums, clients (`*_client`) and servers (`*_server`) of package `credit.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
    tonic::include_proto!("credit.v1");
}

mod redacted;
pub mod time;

/// The encoded `FileDescriptorSet` of the contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("credit_descriptor");

/// Full gRPC service names, as health checks and reflection know them.
pub mod service_names {
    pub const INTAKE: &str = "credit.v1.IntakeService";
    pub const RATING: &str = "credit.v1.RatingService";
    pub const LIMITS: &str = "credit.v1.LimitService";
    pub const COLLECTIONS: &str = "credit.v1.CollectionsService";
    pub const OPERATIONS: &str = "credit.v1.OperationsService";
    pub const TOKENS: &str = "credit.v1.TokenService";
    pub const APPROVALS: &str = "credit.v1.ApprovalService";
}
