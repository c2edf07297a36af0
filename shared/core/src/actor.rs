//! Who did something: the one record every service keeps in audit trails, approvals and
//! events.

use serde::{Deserialize, Serialize};

use crate::identity::Principal;

/// The principal behind an action, as it is recorded. [`Actor::same_person_as`] decides whether
/// two actions were taken by the same person (maker-checker); the name is what people read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// Stable id of the principal's record. Empty for system actors and for records written
    /// before ids were kept.
    #[serde(default)]
    pub principal_id: String,
    /// The person behind the token, the same across all of that person's tokens. Empty for
    /// records written before people were kept apart from tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub person_id: String,
    /// Who it is, as shown to people: "alice", "erp-order-entry", "system:limits". Older records
    /// stored it as `principal`.
    #[serde(alias = "principal")]
    pub name: String,
    /// Role names without the contract's prefix ("ANALYST") held when acting.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Actor {
    /// The authenticated caller, with the roles it holds now.
    pub fn of(principal: &Principal) -> Self {
        Self {
            principal_id: principal.id.clone(),
            person_id: principal.person_id.clone(),
            name: principal.name.clone(),
            roles: principal
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
        }
    }

    /// Four eyes, decided here for every service: whether `self` and `other` are one person.
    ///
    /// Two tokens of one person carry the same person id, and one person's name is theirs
    /// alone (the identity store keeps names unique to a person), so any of person id, token id
    /// or name in common means the same person. Records written before person ids were kept
    /// carry only a token id or a name; comparing every identifier both sides know keeps them
    /// checked too. An identifier one side does not know decides nothing.
    pub fn same_person_as(&self, other: &Actor) -> bool {
        let shared = |mine: &str, theirs: &str| !mine.is_empty() && mine == theirs;
        shared(&self.person_id, &other.person_id)
            || shared(&self.principal_id, &other.principal_id)
            || shared(&self.name, &other.name)
    }

    /// One who is known only by name (a record that kept no id and no roles).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl From<&Actor> for credit_proto::v1::Actor {
    fn from(actor: &Actor) -> Self {
        Self {
            principal: actor.name.clone(),
            roles: actor
                .roles
                .iter()
                .filter_map(|role| credit_proto::v1::Role::from_str_name(&format!("ROLE_{role}")))
                .map(|role| role as i32)
                .collect(),
        }
    }
}

impl From<Actor> for credit_proto::v1::Actor {
    fn from(actor: Actor) -> Self {
        Self::from(&actor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::identity::Role;

    fn alice() -> Principal {
        Principal {
            id: "p-1".to_owned(),
            person_id: "psn-1".to_owned(),
            name: "alice".to_owned(),
            roles: BTreeSet::from([Role::Analyst]),
            approval_authority: None,
        }
    }

    #[test]
    fn an_actor_keeps_who_and_in_which_roles() {
        let actor = Actor::of(&alice());
        assert_eq!(actor.principal_id, "p-1");
        assert_eq!(actor.name, "alice");
        assert_eq!(actor.roles, vec!["ANALYST".to_owned()]);
        let wire = credit_proto::v1::Actor::from(&actor);
        assert_eq!(wire.principal, "alice");
        assert_eq!(wire.roles, vec![credit_proto::v1::Role::Analyst as i32]);
    }

    #[test]
    fn records_written_by_every_earlier_shape_still_read() {
        let intake: Actor =
            serde_json::from_str(r#"{"principal":"bob","roles":["ADMIN"]}"#).unwrap();
        assert_eq!(
            intake,
            Actor {
                principal_id: String::new(),
                person_id: String::new(),
                name: "bob".into(),
                roles: vec!["ADMIN".into()]
            }
        );
        let limits: Actor =
            serde_json::from_str(r#"{"principal_id":"p-9","name":"carol","roles":[]}"#).unwrap();
        assert_eq!(limits.principal_id, "p-9");
        assert_eq!(limits.name, "carol");
        let round_trip: Actor =
            serde_json::from_str(&serde_json::to_string(&limits).unwrap()).unwrap();
        assert_eq!(round_trip, limits);
    }

    #[test]
    fn two_tokens_of_one_person_are_one_pair_of_eyes() {
        let first = Actor::of(&alice());
        let second_token = Actor {
            principal_id: "p-2".into(),
            ..first.clone()
        };
        assert!(first.same_person_as(&second_token));
        let bob = Actor {
            principal_id: "p-3".into(),
            person_id: "psn-2".into(),
            name: "bob".into(),
            roles: vec![],
        };
        assert!(!first.same_person_as(&bob));
        // A record from before person ids: its token id or its name still tells.
        assert!(Actor::named("alice").same_person_as(&first));
        let old_record = Actor {
            principal_id: "p-1".into(),
            ..Actor::named("alice (renamed)")
        };
        assert!(old_record.same_person_as(&first));
        // Nothing known in common decides nothing: a system actor is nobody's checker twin.
        assert!(!Actor::default().same_person_as(&Actor::default()));
    }
}
