//! The `/package.Service/Method` path of a gRPC call, split into its two parts.

use std::collections::HashSet;
use std::sync::OnceLock;

use prost::Message;

/// Service and method of a call. Paths the contract does not know are reported as
/// `unknown` so that a client sending random paths cannot grow the metric label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcPath {
    pub service: String,
    pub method: String,
}

const UNKNOWN: &str = "unknown";

/// Services outside `credit.v1` that every process serves.
const INFRASTRUCTURE_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

impl RpcPath {
    pub fn parse(path: &str) -> Self {
        let known = match path.trim_start_matches('/').split_once('/') {
            Some((service, method)) if is_known(service, method) => Some((service, method)),
            _ => None,
        };
        let (service, method) = known.unwrap_or((UNKNOWN, UNKNOWN));
        Self {
            service: service.to_owned(),
            method: method.to_owned(),
        }
    }

    /// Whether the call is to health or reflection, which need no token: probes and tools
    /// such as grpcurl must reach them before anyone has one.
    pub fn is_infrastructure(&self) -> bool {
        INFRASTRUCTURE_SERVICES.contains(&self.service.as_str())
    }
}

fn is_known(service: &str, method: &str) -> bool {
    if INFRASTRUCTURE_SERVICES.contains(&service) {
        return true;
    }
    known_methods().contains(&(service.to_owned(), method.to_owned()))
}

/// Every (service, method) pair of the `credit.v1` contract, read once from its descriptor.
fn known_methods() -> &'static HashSet<(String, String)> {
    static KNOWN: OnceLock<HashSet<(String, String)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let Ok(descriptors) =
            prost_types::FileDescriptorSet::decode(credit_proto::FILE_DESCRIPTOR_SET)
        else {
            return HashSet::new();
        };
        descriptors
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service.iter().flat_map(move |service| {
                    let service_name = format!("{package}.{}", service.name());
                    service
                        .method
                        .iter()
                        .map(move |method| (service_name.clone(), method.name().to_owned()))
                })
            })
            .collect()
    })
}

/// Methods of `service` in the contract, sorted.
pub fn contract_methods(service: &str) -> Vec<String> {
    let mut methods: Vec<String> = known_methods()
        .iter()
        .filter(|(name, _)| name == service)
        .map(|(_, method)| method.clone())
        .collect();
    methods.sort();
    methods
}

/// For the services' tests: the policy lists exactly the RPCs of the contract, so a new RPC
/// cannot ship without somebody deciding who may call it.
#[allow(clippy::panic, reason = "a test assertion helper")]
pub fn assert_policy_covers_contract(policy: &credit_core::AccessPolicy) {
    let mut listed: Vec<String> = policy.methods().map(str::to_owned).collect();
    listed.sort();
    let contract = contract_methods(policy.service());
    assert!(
        !contract.is_empty(),
        "{} is not in the contract",
        policy.service()
    );
    assert_eq!(
        listed,
        contract,
        "access policy of {} differs from the contract",
        policy.service()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_known_paths_and_hides_unknown_ones() {
        let health = RpcPath::parse("/grpc.health.v1.Health/Check");
        assert_eq!(health.service, "grpc.health.v1.Health");
        assert!(health.is_infrastructure());
        let authorize = RpcPath::parse("/credit.v1.LimitService/Authorize");
        assert_eq!(
            (authorize.service.as_str(), authorize.method.as_str()),
            ("credit.v1.LimitService", "Authorize")
        );
        assert!(!authorize.is_infrastructure());
        let random = RpcPath::parse("/credit.v1.LimitService/NoSuchMethod");
        assert_eq!(random.service, UNKNOWN);
        assert_eq!(RpcPath::parse("garbage").method, UNKNOWN);
    }
}
