//! Corporate group use cases: create a group, add and remove members, read a group with its
//! members, list groups.

use chrono::Utc;
use credit_core::{Actor, ServiceError};
use credit_runtime::sql::{IdempotencyKey, MAX_PAGE_SIZE, Page};

use super::{Intake, audit_entry, new_id};
use crate::api::convert::events;
use crate::domain::customer::{Customer, FieldChange};
use crate::domain::records::{AuditAction, Group};
use crate::store::CustomerFilter;

/// A group and every customer in it, in id (creation) order.
#[derive(Debug, Clone)]
pub struct GroupWithMembers {
    pub group: Group,
    pub members: Vec<Customer>,
}

/// What `CreateGroup` asks for, checked.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: String,
    /// Empty when the parent company is not a customer.
    pub parent_customer_id: String,
    pub description: String,
}

impl Intake {
    /// `group` with all its members, read page by page.
    async fn with_members(&self, group: Group) -> Result<GroupWithMembers, ServiceError> {
        let filter = CustomerFilter {
            group_id: group.id.clone(),
            ..Default::default()
        };
        let mut members = Vec::new();
        let mut page = Page::parse(i32::try_from(MAX_PAGE_SIZE).unwrap_or(500), "")?;
        loop {
            let mut rows = self
                .store
                .list_customers(&filter, &page)
                .await
                .map_err(ServiceError::from)?;
            let next = page.finish(&mut rows, |customer| customer.id.as_str());
            members.extend(rows);
            if next.is_empty() {
                break;
            }
            page = Page::parse(i32::try_from(page.size).unwrap_or(500), &next)?;
        }
        Ok(GroupWithMembers { group, members })
    }

    /// Creates a group (or replays the one an earlier call with the same key created). A
    /// parent company named must be a customer.
    pub async fn create_group(
        &self,
        new: NewGroup,
        key: IdempotencyKey,
        actor: Actor,
    ) -> Result<GroupWithMembers, ServiceError> {
        if !new.parent_customer_id.is_empty() {
            self.load_customer(&new.parent_customer_id).await?;
        }
        let group = Group {
            id: new_id("grp"),
            name: new.name,
            parent_customer_id: new.parent_customer_id,
            description: new.description,
            created_at: Utc::now(),
            created_by: actor,
        };
        let group = self
            .store
            .create_group(&group, &key)
            .await
            .map_err(ServiceError::from)?
            .into_inner();
        self.with_members(group).await
    }

    /// Puts a customer in a group. A customer already in it stays (a retried call); one in
    /// another group must leave that one first.
    pub async fn add_group_member(
        &self,
        group_id: &str,
        customer_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<GroupWithMembers, ServiceError> {
        let group = self.load_group(group_id).await?;
        let current = self.load_customer(customer_id).await?;
        match current.group_id.as_deref() {
            Some(group_id) if group_id == group.id => {}
            Some(other) => {
                return Err(ServiceError::FailedPrecondition {
                    reason: "CUSTOMER_IN_ANOTHER_GROUP",
                    message: format!(
                        "the customer belongs to group {other}; remove it there first"
                    ),
                    metadata: vec![("current_group_id", other.to_owned())],
                });
            }
            None => {
                let change = FieldChange {
                    field: "group_id".into(),
                    old_value: String::new(),
                    new_value: group.id.clone(),
                };
                let audit = audit_entry(
                    &current.id,
                    AuditAction::GroupJoined,
                    actor,
                    vec![change],
                    reason,
                    "",
                );
                let updated = Customer {
                    group_id: Some(group.id.clone()),
                    group_joined_at: Some(audit.changed_at),
                    ..current.clone()
                };
                let event = events::group_member_added(&updated, &group.id, actor);
                self.save(&current, updated, audit, vec![event], actor)
                    .await?;
            }
        }
        self.with_members(group).await
    }

    /// Takes a customer out of a group. A customer in no group is already out (a retried
    /// call); one in another group is refused.
    pub async fn remove_group_member(
        &self,
        group_id: &str,
        customer_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<GroupWithMembers, ServiceError> {
        let group = self.load_group(group_id).await?;
        let current = self.load_customer(customer_id).await?;
        if current.group_id.as_deref() == Some(group.id.as_str()) {
            let change = FieldChange {
                field: "group_id".into(),
                old_value: group.id.clone(),
                new_value: String::new(),
            };
            let audit = audit_entry(
                &current.id,
                AuditAction::GroupLeft,
                actor,
                vec![change],
                reason,
                "",
            );
            let updated = Customer {
                group_id: None,
                group_joined_at: None,
                ..current.clone()
            };
            let event = events::group_member_removed(&updated, &group.id, actor);
            self.save(&current, updated, audit, vec![event], actor)
                .await?;
        } else if current.group_id.is_some() {
            return Err(ServiceError::failed_precondition(
                "NOT_A_MEMBER",
                "the customer belongs to another group",
            ));
        }
        self.with_members(group).await
    }

    pub async fn get_group(&self, group_id: &str) -> Result<GroupWithMembers, ServiceError> {
        let group = self.load_group(group_id).await?;
        self.with_members(group).await
    }

    /// One page of the groups whose name starts with `name_prefix` (any case), and the next
    /// page's token.
    pub async fn list_groups(
        &self,
        name_prefix: &str,
        page: &Page,
    ) -> Result<(Vec<Group>, String), ServiceError> {
        let mut groups = self
            .store
            .list_groups(name_prefix, page)
            .await
            .map_err(ServiceError::from)?;
        let next_page_token = page.finish(&mut groups, |group| group.id.as_str());
        Ok((groups, next_page_token))
    }
}
