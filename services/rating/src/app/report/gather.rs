//! Gathering a rating report: the rating, the customer's credit file, grade history and
//! overrides, as `GetRatingReport` answers them and [`super::render_html`] renders them.

use chrono::Utc;
use credit_core::ServiceError;
use credit_proto::time::timestamp;
use credit_proto::v1 as pb;

use crate::api::convert::rating::trigger_to_proto;
use crate::app::models::published_model;
use crate::app::rater::Rater;
use crate::domain::ModelId;
use crate::domain::rating::Rating;
use crate::store::{ModelStore, OverrideFilter};

/// Grade history entries and overrides a report shows.
const REPORT_HISTORY: i64 = 50;

/// The report on `customer_id`'s rating `rating_id` (the current one when empty); NOT_FOUND when
/// the rating is of another customer.
pub async fn gather_report(
    rater: &Rater,
    models: &dyn ModelStore,
    customer_id: &str,
    rating_id: &str,
) -> Result<pb::RatingReport, ServiceError> {
    let rating = match rating_id.trim() {
        "" => rater.current_rating(customer_id).await?,
        rating_id => {
            let rating = rater.stored_rating(rating_id).await?;
            if rating.customer_id != customer_id {
                return Err(ServiceError::not_found(
                    "rating",
                    format!("{rating_id} of customer {customer_id}"),
                ));
            }
            rating
        }
    };
    let now = Utc::now();
    let file = rater
        .files()
        .credit_file(customer_id, now.date_naive())
        .await?;
    let ratings = rater.ratings();
    let history = ratings
        .rating_history(customer_id, None, REPORT_HISTORY)
        .await
        .map_err(ServiceError::from)?;
    let overrides = ratings
        .list_overrides(
            &OverrideFilter {
                customer_id: customer_id.to_owned(),
                ..OverrideFilter::default()
            },
            None,
            REPORT_HISTORY,
        )
        .await
        .map_err(ServiceError::from)?;
    let model_display_name = match ModelId::parse(&rating.model_id) {
        Ok(model_id) => {
            published_model(models, &model_id, u32::try_from(rating.model_version).ok())
                .await
                .map(|published| published.model.display_name().to_owned())
                .unwrap_or_default()
        }
        Err(_) => String::new(),
    };
    let customer = &file.customer;
    let (industry_code, founding_date) = match &customer.details {
        Some(pb::customer::Details::Enterprise(enterprise)) => {
            (enterprise.industry_code.clone(), enterprise.founding_date)
        }
        _ => (String::new(), None),
    };
    // The statement and bureau report the rating used, when intake still has them on top.
    Ok(pb::RatingReport {
        customer: Some(pb::RatedCustomerSummary {
            customer_id: customer.customer_id.clone(),
            kind: customer.kind,
            display_name: customer.display_name.clone(),
            country: customer.country.clone(),
            industry_code,
            status: customer.status,
            group_id: customer.group_id.clone(),
            group_name: file.group_name.clone(),
            founding_date,
        }),
        model_display_name,
        statements: file.statements.clone(),
        bureau_report: file.bureau_report.clone(),
        trade_references: file.trade_references.clone(),
        grade_history: history.iter().map(grade_history_entry).collect(),
        overrides: overrides.iter().map(pb::RatingOverride::from).collect(),
        generated_at: Some(timestamp(now)),
        rating: Some(pb::Rating::from(&rating)),
    })
}

fn grade_history_entry(rating: &Rating) -> pb::GradeHistoryEntry {
    pb::GradeHistoryEntry {
        rating_id: rating.rating_id.clone(),
        rated_at: rating.rated_at.map(timestamp),
        score: rating.score.clone(),
        model_grade: rating.model_grade.clone(),
        grade: rating.grade.clone(),
        pd: rating.pd.clone(),
        overridden: !rating.override_id.is_empty(),
        trigger: trigger_to_proto(rating.trigger).into(),
    }
}
