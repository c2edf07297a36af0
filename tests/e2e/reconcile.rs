//! ReconcileExposure on both backends: a damaged cache is reported to the cent, left alone by
//! a dry run, repaired by a real run and clean on the next one; only an ADMIN may run it, and
//! bad input is refused with field violations.

use std::time::Duration;

use credit_core::Role;
use credit_e2e_tests::TestSuite;
use credit_limits::exposure::ExposureCache;
use credit_proto::v1 as pb;
use credit_runtime::config::Backend;
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use tonic::Code;
use tonic_types::StatusExt;

use crate::authorize::{
    Limits, amount, authorize, check, codes, customer, exposure, grant, scope_of_customer,
    scope_of_group, wait_until_approvable,
};

async fn reconcile(
    admin: &mut Limits,
    customer_ids: &[&str],
    dry_run: bool,
) -> pb::ReconcileExposureResponse {
    admin
        .reconcile_exposure(pb::ReconcileExposureRequest {
            customer_ids: customer_ids.iter().map(|id| (*id).to_owned()).collect(),
            dry_run,
        })
        .await
        .unwrap()
        .into_inner()
}

/// (scope, field, cached, ledger, repaired) of each difference, amounts as strings.
fn summary(
    response: &pb::ReconcileExposureResponse,
) -> Vec<(String, String, String, String, bool)> {
    response
        .differences
        .iter()
        .map(|difference| {
            let scope = match difference
                .scope
                .as_ref()
                .and_then(|scope| scope.scope.as_ref())
            {
                Some(pb::limit_scope::Scope::CustomerId(id)) => format!("customer:{id}"),
                Some(pb::limit_scope::Scope::GroupId(id)) => format!("group:{id}"),
                other => panic!("unexpected scope {other:?}"),
            };
            let money = |money: &Option<pb::Money>| {
                money
                    .as_ref()
                    .map(|money| format!("{} {}", money.amount, money.currency))
                    .unwrap_or_default()
            };
            (
                scope,
                difference.field.clone(),
                money(&difference.cached),
                money(&difference.ledger),
                difference.repaired,
            )
        })
        .collect()
}

/// The cached exposure of a customer and of a group, in CNY.
async fn cached(
    cache: &dyn ExposureCache,
    customer_id: &str,
    group_id: &str,
) -> (Decimal, Decimal) {
    let customer = cache.get_customer(customer_id).await.unwrap().unwrap();
    let group = cache.get_group(group_id).await.unwrap().unwrap();
    (
        Decimal::new(customer.exposure, 2),
        Decimal::new(group.exposure, 2),
    )
}

/// Writes a wrong exposure into the cached entries of a customer (in `group_id`) and of the
/// group, as a lost write or a stray tool would: on Redis straight into the hashes, past the
/// exposure cache module; on the embedded default through the in-process cache, the only way
/// into it.
async fn damage(
    suite: &TestSuite,
    customer_id: &str,
    customer_exposure: &str,
    group_id: &str,
    group_exposure: &str,
) {
    if let Backend::Production {
        redis_url,
        redis_key_prefix,
        ..
    } = suite.backend()
    {
        // The layout of services/limits/src/exposure/redis_store.rs: a customer in a group
        // lives under the group's hash tag.
        let customer_key = format!("{redis_key_prefix}{{{group_id}}}:customer:{customer_id}");
        let group_key = format!("{redis_key_prefix}{{{group_id}}}:group:{group_id}");
        hset(
            redis_url.expose_secret(),
            &customer_key,
            "exposure",
            customer_exposure,
        )
        .await;
        hset(
            redis_url.expose_secret(),
            &group_key,
            "exposure",
            group_exposure,
        )
        .await;
        return;
    }
    let cache = suite.exposure_cache();
    let mut profile = cache.get_customer(customer_id).await.unwrap().unwrap();
    profile.exposure = customer_exposure.parse().unwrap();
    cache.load_customer(&profile).await.unwrap();
    let mut group = cache.get_group(group_id).await.unwrap().unwrap();
    group.exposure = group_exposure.parse().unwrap();
    cache.load_group(&group).await.unwrap();
}

async fn hset(redis_url: &str, key: &str, field: &str, value: &str) {
    let client = redis::Client::open(redis_url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(exists, "{key} is cached before it is damaged");
    let _: () = redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A customer in a group and a customer on its own, with orders; the first one's cached
/// exposure and its group's are then damaged.
pub async fn damaged_exposure_is_reported_exactly_then_repaired(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let member = customer(suite, 26_001, true).await;
    let loner = customer(suite, 26_002, true).await;
    let mut intake = suite.intake(&suite.issue_token("ana", &[Role::Analyst]).await);
    let group_id = intake
        .create_group(pb::CreateGroupRequest {
            request_id: "recon-grp".into(),
            group: Some(pb::CustomerGroup {
                name: "Reconciled Group".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap()
        .group_id;
    intake
        .add_group_member(pb::AddGroupMemberRequest {
            group_id: group_id.clone(),
            customer_id: member.clone(),
            reason: "subsidiary".into(),
        })
        .await
        .unwrap();
    grant(
        suite,
        scope_of_customer(&member),
        "100000.00",
        "recon-lim-1",
    )
    .await;
    grant(suite, scope_of_group(&group_id), "80000.00", "recon-glim").await;
    grant(suite, scope_of_customer(&loner), "50000.00", "recon-lim-2").await;
    // Orders go through the group only once limits has learned of the membership.
    for _ in 0..credit_e2e_tests::POLLS {
        let what_if = check(&mut orders, &member, "80000.01").await;
        if codes(&what_if.reasons).contains(&"GROUP_LIMIT_EXCEEDED".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until_approvable(&mut orders, &loner, "1.00").await;
    for (customer_id, key, order) in [
        (&member, "recon-1", "1000.00"),
        (&member, "recon-2", "2500.00"),
        (&loner, "recon-3", "700.00"),
    ] {
        let approved = authorize(&mut orders, customer_id, key, order)
            .await
            .unwrap();
        assert_eq!(approved.decision(), pb::AuthorizationDecision::Approved);
    }
    let ledger = amount(
        &exposure(&mut orders, scope_of_customer(&member))
            .await
            .exposure,
    );
    assert_eq!(ledger, Decimal::new(3_500, 0));

    let clean = reconcile(&mut admin, &[], false).await;
    assert_eq!(
        (clean.customers_checked, clean.groups_checked),
        (2, 1),
        "every customer limits knows of, and their group"
    );
    assert!(clean.differences.is_empty(), "{:?}", clean.differences);
    assert!(clean.started_at.is_some() && clean.finished_at.is_some());

    damage(suite, &member, "999999", &group_id, "123456").await;
    let cache = suite.exposure_cache();

    let dry = reconcile(&mut admin, &[], true).await;
    let expected = |repaired| {
        vec![
            (
                format!("customer:{member}"),
                "exposure".to_owned(),
                "9999.99 CNY".to_owned(),
                "3500.00 CNY".to_owned(),
                repaired,
            ),
            (
                format!("group:{group_id}"),
                "exposure".to_owned(),
                "1234.56 CNY".to_owned(),
                "3500.00 CNY".to_owned(),
                repaired,
            ),
        ]
    };
    assert_eq!(summary(&dry), expected(false));
    assert_eq!(dry.repaired_count, 0);
    assert_eq!(
        cached(cache.as_ref(), &member, &group_id).await,
        (Decimal::new(999_999, 2), Decimal::new(123_456, 2)),
        "a dry run repairs nothing"
    );

    let repaired = reconcile(&mut admin, &[], false).await;
    assert_eq!(summary(&repaired), expected(true));
    assert_eq!(repaired.repaired_count, 2);
    assert_eq!(
        cached(cache.as_ref(), &member, &group_id).await,
        (Decimal::new(3_500, 0), Decimal::new(3_500, 0)),
        "the cache equals the ledger again"
    );

    let again = reconcile(&mut admin, &[], false).await;
    assert!(again.differences.is_empty(), "{:?}", again.differences);
    assert_eq!(again.repaired_count, 0);

    // The rebuilt entries take orders as before, counted in cache and ledger alike.
    let next = authorize(&mut orders, &member, "recon-4", "100.00")
        .await
        .unwrap();
    assert_eq!(next.decision(), pb::AuthorizationDecision::Approved);
    assert_eq!(amount(&next.exposure), Decimal::new(3_600, 0));
    assert_eq!(
        cached(cache.as_ref(), &member, &group_id).await,
        (Decimal::new(3_600, 0), Decimal::new(3_600, 0))
    );

    // Named customers: only they and their groups are checked.
    let named = reconcile(&mut admin, &[&loner], true).await;
    assert_eq!((named.customers_checked, named.groups_checked), (1, 0));
    assert!(named.differences.is_empty(), "{:?}", named.differences);
}

/// An entry that cannot even be read back is reported (with no cached figure) and rebuilt.
/// Redis only: the in-process cache holds typed values and cannot be made unreadable.
#[tokio::test]
async fn an_unreadable_redis_entry_is_reported_and_rebuilt() {
    let suite = TestSuite::production(credit_suite::ServiceSelection::all()).await;
    let mut admin = suite.limits(&suite.admin_token);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(&suite, 26_101, true).await;
    grant(
        &suite,
        scope_of_customer(&customer_id),
        "1000.00",
        "recon-u",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    authorize(&mut orders, &customer_id, "recon-u-1", "250.00")
        .await
        .unwrap();
    let Backend::Production {
        redis_url,
        redis_key_prefix,
        ..
    } = suite.backend()
    else {
        unreachable!("a production suite")
    };
    let key = format!("{redis_key_prefix}{{{customer_id}}}:customer:{customer_id}");
    hset(redis_url.expose_secret(), &key, "exposure", "not-a-number").await;

    let repaired = reconcile(&mut admin, &[&customer_id], false).await;
    assert_eq!(
        summary(&repaired),
        [(
            format!("customer:{customer_id}"),
            "exposure".to_owned(),
            String::new(),
            "250.00 CNY".to_owned(),
            true,
        )]
    );
    let rebuilt = suite
        .exposure_cache()
        .get_customer(&customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rebuilt.exposure, 25_000);
    assert!(
        reconcile(&mut admin, &[], false)
            .await
            .differences
            .is_empty()
    );
    suite.stop().await;
}

/// A customer that is not cached is cold, not wrong: it is not reported.
pub async fn cold_customers_are_not_differences(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(suite, 26_201, true).await;
    grant(suite, scope_of_customer(&customer_id), "1000.00", "recon-c").await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    authorize(&mut orders, &customer_id, "recon-c-1", "300.00")
        .await
        .unwrap();
    suite
        .exposure_cache()
        .evict_customer(&customer_id)
        .await
        .unwrap();
    let response = reconcile(&mut admin, &[], false).await;
    assert_eq!(response.customers_checked, 1);
    assert!(
        response.differences.is_empty(),
        "{:?}",
        response.differences
    );
    assert!(
        suite
            .exposure_cache()
            .get_customer(&customer_id)
            .await
            .unwrap()
            .is_none(),
        "left cold, to be rebuilt by its next decision"
    );
}

pub async fn only_an_admin_may_reconcile(suite: &TestSuite) {
    for roles in [
        &[Role::CreditManager][..],
        &[Role::OrderEntry],
        &[Role::Analyst, Role::Collector],
    ] {
        let mut limits = suite.limits(&suite.issue_token("staff", roles).await);
        let refused = limits
            .reconcile_exposure(pb::ReconcileExposureRequest {
                customer_ids: Vec::new(),
                dry_run: true,
            })
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{roles:?}: {refused:?}"
        );
    }
}

pub async fn bad_input_is_refused_with_field_violations(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let violated = |status: &tonic::Status| -> Vec<String> {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|violation| violation.field.clone())
            .collect()
    };
    let call = |customer_ids: Vec<String>| pb::ReconcileExposureRequest {
        customer_ids,
        dry_run: false,
    };

    let empty = admin
        .reconcile_exposure(call(vec!["cus_1".into(), String::new(), " ".into()]))
        .await
        .unwrap_err();
    assert_eq!(violated(&empty), ["customer_ids[1]", "customer_ids[2]"]);

    let too_many = admin
        .reconcile_exposure(call((0..1001).map(|n| format!("cus_{n}")).collect()))
        .await
        .unwrap_err();
    assert_eq!(violated(&too_many), ["customer_ids"]);

    let unknown = admin
        .reconcile_exposure(call(vec!["cus_nobody".into()]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(unknown.message().contains("cus_nobody"), "{unknown:?}");
}

/// Nobody calls ReconcileExposure: the suite's own background reconcile finds the damaged
/// entry, rebuilds it from the ledger and counts the repair in its metric.
async fn the_background_reconcile_repairs_by_itself(suite: TestSuite) {
    let mut orders = suite.limits(&suite.issue_token("erp", &[Role::OrderEntry]).await);
    let customer_id = customer(&suite, 26_301, true).await;
    grant(
        &suite,
        scope_of_customer(&customer_id),
        "1000.00",
        "recon-bg",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    authorize(&mut orders, &customer_id, "recon-bg-1", "250.00")
        .await
        .unwrap();
    let cache = suite.exposure_cache();
    if let Backend::Production {
        redis_url,
        redis_key_prefix,
        ..
    } = suite.backend()
    {
        let key = format!("{redis_key_prefix}{{{customer_id}}}:customer:{customer_id}");
        hset(redis_url.expose_secret(), &key, "exposure", "99999").await;
    } else {
        let mut profile = cache.get_customer(&customer_id).await.unwrap().unwrap();
        profile.exposure = 99_999;
        cache.load_customer(&profile).await.unwrap();
    }

    let mut exposure = 0;
    for _ in 0..credit_e2e_tests::POLLS {
        exposure = cache
            .get_customer(&customer_id)
            .await
            .unwrap()
            .map_or(0, |profile| profile.exposure);
        if exposure == 25_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(exposure, 25_000, "rebuilt from the ledger: 250.00 held");
    let metrics = crate::health::http_get(suite.metrics_addr.unwrap(), "/metrics").await;
    let repairs: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("credit_limits_exposure_repairs_total "))
        .unwrap_or_else(|| panic!("the repair counter is exported:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(repairs >= 1, "the repair is counted: {repairs}");
    suite.stop().await;
}

fn every_second(settings: &mut credit_runtime::Settings) {
    settings.exposure_reconcile_interval = Some(Duration::from_secs(1));
}

#[tokio::test]
async fn the_background_reconcile_repairs_by_itself_on_redis() {
    let suite =
        TestSuite::production_with(credit_suite::ServiceSelection::all(), None, every_second).await;
    the_background_reconcile_repairs_by_itself(suite).await;
}

#[tokio::test]
async fn the_background_reconcile_repairs_by_itself_embedded() {
    let suite = TestSuite::embedded_with(every_second).await;
    the_background_reconcile_repairs_by_itself(suite).await;
}

/// Callers that give up mid-call (a deadline of a fraction of a millisecond): whatever the
/// cache reserved for them is written durably or taken back, so the cache equals the ledger
/// right after, without waiting for any repair.
pub async fn cancelled_authorizations_leave_no_reservation_behind(suite: &TestSuite) {
    let mut admin = suite.limits(&suite.admin_token);
    let token = suite.issue_token("erp", &[Role::OrderEntry]).await;
    let mut orders = suite.limits(&token);
    let customer_id = customer(suite, 26_401, true).await;
    grant(
        suite,
        scope_of_customer(&customer_id),
        "100000.00",
        "recon-cancel",
    )
    .await;
    wait_until_approvable(&mut orders, &customer_id, "1.00").await;
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let mut orders = suite.limits(&token);
            let customer_id = customer_id.clone();
            tokio::spawn(async move {
                let mut gave_up = 0;
                for number in 0..25 {
                    for deadline_micros in [100, 400, 1_500] {
                        let mut request = tonic::Request::new(pb::AuthorizeRequest {
                            customer_id: customer_id.clone(),
                            order_id: format!("cancel-{caller}-{number}-{deadline_micros}"),
                            amount: Some(pb::Money {
                                amount: "10.00".into(),
                                currency: "CNY".into(),
                            }),
                            idempotency_key: format!("cancel-{caller}-{number}-{deadline_micros}"),
                            hold_ttl: None,
                        });
                        request.set_timeout(Duration::from_micros(deadline_micros));
                        if orders.authorize(request).await.is_err() {
                            gave_up += 1;
                        }
                    }
                }
                gave_up
            })
        })
        .collect();
    let mut gave_up = 0;
    for caller in callers {
        gave_up += caller.await.unwrap();
    }
    assert!(gave_up > 0, "some callers gave up before their answer");
    // Calls the callers left run to their end on the server; give them a moment.
    let mut report = reconcile(&mut admin, &[&customer_id], true).await;
    for _ in 0..40 {
        if report.differences.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        report = reconcile(&mut admin, &[&customer_id], true).await;
    }
    assert!(
        report.differences.is_empty(),
        "{} calls given up; cache and ledger differ: {:?}",
        gave_up,
        report.differences
    );
}
