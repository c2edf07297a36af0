//! Health tells the truth and reflection lists the contract, on both backends.

use credit_e2e_tests::{SERVICE_NAMES, TestSuite};
use credit_suite::ServiceSelection;
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn reflected_services(suite: &TestSuite) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(suite.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response.unwrap() {
        MessageResponse::ListServicesResponse(list) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn assert_serving_and_reflected(suite: &TestSuite, served: &[&str]) {
    for name in served {
        suite.wait_for_health(name, ServingStatus::Serving).await;
    }
    // The process as a whole is alive (the liveness probe's question).
    assert_eq!(suite.health("").await.unwrap(), ServingStatus::Serving);
    let listed = reflected_services(suite).await;
    for name in SERVICE_NAMES {
        assert!(
            listed.iter().any(|listed| listed == name),
            "reflection lists {name}: {listed:?}"
        );
    }
}

#[tokio::test]
async fn embedded_default_serves_all_four_services() {
    let suite = TestSuite::embedded().await;
    assert_serving_and_reflected(&suite, &SERVICE_NAMES).await;
    suite.stop().await;
}

#[tokio::test]
async fn postgres_and_redis_serve_all_four_services() {
    let suite = TestSuite::production(ServiceSelection::all()).await;
    assert_serving_and_reflected(&suite, &SERVICE_NAMES).await;
    suite.stop().await;
}

#[tokio::test]
async fn a_subset_serves_only_its_services() {
    let suite = TestSuite::production("limits".parse().unwrap()).await;
    suite
        .wait_for_health(credit_proto::service_names::LIMITS, ServingStatus::Serving)
        .await;
    let unknown = suite
        .health(credit_proto::service_names::INTAKE)
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    suite.stop().await;
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    let suite = TestSuite::embedded().await;
    suite
        .wait_for_health(credit_proto::service_names::INTAKE, ServingStatus::Serving)
        .await;
    let mut client =
        credit_proto::v1::intake_service_client::IntakeServiceClient::new(suite.channel.clone());
    let _ = client
        .get_customer(credit_proto::v1::GetCustomerRequest {
            customer_id: "x".into(),
        })
        .await;
    let metrics_addr = suite.metrics_addr.unwrap();
    let body = http_get(metrics_addr, "/metrics").await;
    assert!(
        body.contains(r#"credit_grpc_server_requests_total{service="credit.v1.IntakeService",method="GetCustomer",code="UNAUTHENTICATED"} 1"#),
        "{body}"
    );
    assert!(body.contains("credit_grpc_server_request_duration_seconds_bucket"));
    suite.stop().await;
}

/// The status code of a minimal HTTP/1.0 GET.
pub(crate) async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}

/// A minimal HTTP/1.0 GET, enough for the metrics endpoint.
pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    response
}

#[tokio::test]
async fn every_call_gets_a_request_id_and_keeps_the_callers_one() {
    let suite = TestSuite::embedded().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(suite.channel.clone());
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let generated = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "order-4711-attempt-2".parse().unwrap());
    let response = health.check(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "order-4711-attempt-2"
    );
    suite.stop().await;
}

#[tokio::test]
async fn reflection_can_be_switched_off() {
    let suite = TestSuite::embedded_with(|settings| settings.reflection = false).await;
    suite
        .wait_for_health("credit.v1.LimitService", ServingStatus::Serving)
        .await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let refused = ServerReflectionClient::new(suite.channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    suite.stop().await;
}
