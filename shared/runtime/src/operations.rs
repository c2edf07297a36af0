//! `credit.v1.OperationsService`: the operator's view of the event pipeline's dead letters.
//! Every process serves it beside its credit services; `credit-suite events` calls it.

use credit_core::{AccessPolicy, Role, ServiceError, optional_text, required_text};
use credit_proto::service_names::OPERATIONS;
use credit_proto::time::timestamp;
use credit_proto::v1 as pb;
use credit_proto::v1::operations_service_server::{OperationsService, OperationsServiceServer};
use tonic::{Request, Response, Status};

use crate::auth::principal;
use crate::events::{DeadLetter, DeadLetterError, DeadLetterStatus, DeadLetterStore};
use crate::sql::{Page, storage_error};

/// Longest consumer name and reason accepted.
const MAX_CONSUMER_LEN: usize = 100;
const MAX_REASON_LEN: usize = 500;

/// Only administrators see and settle dead letters: their payloads may carry personal data.
const ADMIN_ONLY: &[Role] = &[];

/// Who may call which RPC. ADMIN may call all of them.
pub fn access_policy() -> AccessPolicy {
    AccessPolicy::new(
        OPERATIONS,
        &[
            ("ListDeadLetters", ADMIN_ONLY),
            ("GetDeadLetter", ADMIN_ONLY),
            ("ReplayDeadLetter", ADMIN_ONLY),
            ("DropDeadLetter", ADMIN_ONLY),
        ],
    )
}

/// The service, on the process's events store.
pub fn server(dead_letters: DeadLetterStore) -> OperationsServiceServer<OperationsApi> {
    OperationsServiceServer::new(OperationsApi { dead_letters })
}

#[derive(Debug, Clone)]
pub struct OperationsApi {
    dead_letters: DeadLetterStore,
}

type Answer<T> = Result<Response<T>, Status>;

fn dead_letter_error(error: DeadLetterError) -> ServiceError {
    match error {
        DeadLetterError::NotFound(id) => ServiceError::not_found("dead letter", id),
        DeadLetterError::Closed(id) => ServiceError::failed_precondition(
            "DEAD_LETTER_CLOSED",
            format!("dead letter '{id}' was already replayed or dropped"),
        ),
        DeadLetterError::NotReplayable(id) => ServiceError::failed_precondition(
            "DEAD_LETTER_NOT_REPLAYABLE",
            format!("dead letter '{id}' is an outbox row that cannot be decoded; drop it"),
        ),
        DeadLetterError::Store(error) => storage_error(error),
    }
}

fn status_to_proto(status: DeadLetterStatus) -> pb::DeadLetterStatus {
    match status {
        DeadLetterStatus::Dead => pb::DeadLetterStatus::Dead,
        // Taken by a consumer but not yet done: still waiting, as the operator sees it.
        DeadLetterStatus::ReplayRequested | DeadLetterStatus::Replaying => {
            pb::DeadLetterStatus::ReplayRequested
        }
        DeadLetterStatus::Replayed => pb::DeadLetterStatus::Replayed,
        DeadLetterStatus::Dropped => pb::DeadLetterStatus::Dropped,
    }
}

fn to_proto(letter: DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        dead_letter_id: letter.dead_letter_id,
        consumer: letter.consumer,
        producer: letter.producer,
        event_id: letter.event_id,
        event_type: letter.event_type,
        source: letter.source,
        error: letter.error,
        attempts: i32::try_from(letter.attempts).unwrap_or(i32::MAX),
        status: status_to_proto(letter.status).into(),
        dead_lettered_at: Some(timestamp(letter.dead_lettered_at)),
        updated_at: Some(timestamp(letter.updated_at)),
        history: letter
            .history
            .into_iter()
            .map(|action| pb::DeadLetterAction {
                action: action.action,
                actor: action.actor,
                detail: action.detail,
                at: Some(timestamp(action.at)),
            })
            .collect(),
        payload_size_bytes: i64::try_from(letter.payload.len()).unwrap_or(i64::MAX),
    }
}

fn dead_letter_id(value: &str) -> Result<String, ServiceError> {
    required_text("dead_letter_id", value, MAX_CONSUMER_LEN)
}

#[tonic::async_trait]
impl OperationsService for OperationsApi {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Answer<pb::ListDeadLettersResponse> {
        let request = request.into_inner();
        let consumer = optional_text("consumer", &request.consumer, MAX_CONSUMER_LEN)?;
        let page = Page::parse(request.page_size, &request.page_token)?;
        let page = self
            .dead_letters
            .list(
                (!consumer.is_empty()).then_some(consumer.as_str()),
                request.include_closed,
                &page,
            )
            .await
            .map_err(storage_error)?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: page.dead_letters.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
            open_count: page.open_count,
        }))
    }

    async fn get_dead_letter(
        &self,
        request: Request<pb::GetDeadLetterRequest>,
    ) -> Answer<pb::GetDeadLetterResponse> {
        let id = dead_letter_id(&request.get_ref().dead_letter_id)?;
        let letter = self
            .dead_letters
            .get(&id)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| ServiceError::not_found("dead letter", id))?;
        Ok(Response::new(pb::GetDeadLetterResponse {
            dead_letter: Some(to_proto(letter)),
        }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Answer<pb::ReplayDeadLetterResponse> {
        let actor = principal(&request)?.id.clone();
        let id = dead_letter_id(&request.get_ref().dead_letter_id)?;
        let reason = optional_text("reason", &request.get_ref().reason, MAX_REASON_LEN)?;
        let letter = self
            .dead_letters
            .request_replay(&id, &actor, &reason)
            .await
            .map_err(dead_letter_error)?;
        tracing::info!(dead_letter_id = %id, actor = %actor, "dead letter replay requested");
        Ok(Response::new(pb::ReplayDeadLetterResponse {
            dead_letter: Some(to_proto(letter)),
        }))
    }

    async fn drop_dead_letter(
        &self,
        request: Request<pb::DropDeadLetterRequest>,
    ) -> Answer<pb::DropDeadLetterResponse> {
        let actor = principal(&request)?.id.clone();
        let id = dead_letter_id(&request.get_ref().dead_letter_id)?;
        let reason = required_text("reason", &request.get_ref().reason, MAX_REASON_LEN)?;
        let letter = self
            .dead_letters
            .drop_letter(&id, &actor, &reason)
            .await
            .map_err(dead_letter_error)?;
        tracing::info!(dead_letter_id = %id, actor = %actor, "dead letter dropped");
        Ok(Response::new(pb::DropDeadLetterResponse {
            dead_letter: Some(to_proto(letter)),
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_policy_names_every_rpc_of_the_contract_and_nothing_else() {
        crate::rpc_path::assert_policy_covers_contract(&super::access_policy());
    }
}
