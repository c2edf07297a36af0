//! Health reports NOT_SERVING while a store does not answer, and start-up names a store it
//! cannot reach.

use std::time::Duration;

use credit_e2e_tests::{OwnRedis, SERVICE_NAMES, TestSuite};
use credit_runtime::Settings;
use credit_runtime::config::Backend;
use credit_suite::{Application, ServiceSelection};
use secrecy::SecretString;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn losing_the_database_turns_health_to_not_serving() {
    let suite = TestSuite::production(ServiceSelection::all()).await;
    for name in SERVICE_NAMES {
        suite.wait_for_health(name, ServingStatus::Serving).await;
    }
    // Dropping the database (closing every connection) is PostgreSQL going away for this
    // suite, without disturbing the server other tests use.
    suite.database().drop_database().await;
    for name in SERVICE_NAMES {
        suite.wait_for_health(name, ServingStatus::NotServing).await;
    }
    // Liveness stays up: an outage must not restart every pod.
    assert_eq!(suite.health("").await.unwrap(), ServingStatus::Serving);
    // The same on the metrics port, for HTTP probes (gRPC probes cannot speak TLS).
    let metrics = suite.metrics_addr.unwrap();
    assert_eq!(crate::health::http_status(metrics, "/health").await, 200);
    assert_eq!(crate::health::http_status(metrics, "/ready").await, 503);
    assert_eq!(
        crate::health::http_status(metrics, "/health/credit.v1.LimitService").await,
        503
    );
    suite.stop().await;
}

#[tokio::test]
async fn start_up_without_postgres_names_the_database_setting() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = Settings::for_tests(std::env::temp_dir());
    settings.backend = Backend::Production {
        database_url: SecretString::from(format!(
            "postgres://postgres:sekrit@127.0.0.1:{free_port}/credit"
        )),
        redis_url: SecretString::from(credit_runtime::testing::redis_url()),
        redis_key_prefix: "test:no-postgres:".into(),
    };
    let error = Application::build(&settings, &ServiceSelection::all())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("CREDIT_DATABASE_URL"), "{error}");
    assert!(
        !error.contains("sekrit"),
        "the password must not be shown: {error}"
    );
}

#[tokio::test]
async fn losing_redis_turns_health_to_not_serving() {
    let mut redis = OwnRedis::start().await;
    let database = credit_runtime::testing::TestDatabase::create().await;
    let mut settings = Settings::for_tests(std::env::temp_dir());
    settings.backend = Backend::Production {
        database_url: SecretString::from(database.url.clone()),
        redis_url: SecretString::from(format!("redis://127.0.0.1:{}/0", redis.port)),
        redis_key_prefix: "test:".into(),
    };
    let application = Application::build(&settings, &ServiceSelection::all())
        .await
        .unwrap();
    let addr = application.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status_of = |name: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .map(|response| response.into_inner().status())
        }
    };
    wait_until(
        || status_of(credit_proto::service_names::LIMITS),
        ServingStatus::Serving,
    )
    .await;
    redis.stop();
    wait_until(
        || status_of(credit_proto::service_names::LIMITS),
        ServingStatus::NotServing,
    )
    .await;
    let _ = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    database.drop_database().await;
}

async fn wait_until<F, Fut>(mut probe: F, wanted: ServingStatus)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<ServingStatus, tonic::Status>>,
{
    for _ in 0..300 {
        if matches!(probe().await, Ok(status) if status == wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("health never became {wanted:?}");
}
