//! Principals, groups and targets from the configuration as Cedar entities, and the entity
//! uids of requests.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression, Schema,
};

use super::error::PolicyError;
use super::model::{Principal, TargetInfo};

/// The uid `Type::"id"`.
pub(crate) fn uid(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    let type_name = EntityTypeName::from_str(type_name)
        .map_err(|e| PolicyError::Entities(format!("entity type {type_name}: {e}")))?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

/// Build the entity store: every user (with `kind`), every group, every target (with
/// `protocol` and its tags as Cedar entity tags), and the schema's action hierarchy.
pub(crate) fn build(
    schema: &Schema,
    principals: &[Principal],
    targets: &[TargetInfo],
) -> Result<Entities, PolicyError> {
    let mut entities = Vec::new();
    let mut groups = BTreeSet::new();
    let mut seen = HashSet::new();
    for principal in principals {
        if !seen.insert(("User", principal.name.clone())) {
            return Err(PolicyError::Entities(format!(
                "user {} is defined twice",
                principal.name
            )));
        }
        let mut parents = HashSet::new();
        for group in &principal.groups {
            parents.insert(uid("Group", group)?);
            groups.insert(group.clone());
        }
        let attrs = HashMap::from([(
            "kind".to_string(),
            RestrictedExpression::new_string(principal.kind.as_str().to_string()),
        )]);
        let entity = Entity::new(uid("User", &principal.name)?, attrs, parents)
            .map_err(|e| PolicyError::Entities(format!("user {}: {e}", principal.name)))?;
        entities.push(entity);
    }
    for group in groups {
        entities.push(Entity::new_no_attrs(uid("Group", &group)?, HashSet::new()));
    }
    for target in targets {
        if !seen.insert(("Target", target.name.clone())) {
            return Err(PolicyError::Entities(format!(
                "target {} is defined twice",
                target.name
            )));
        }
        let attrs = HashMap::from([(
            "protocol".to_string(),
            RestrictedExpression::new_string(target.protocol.as_str().to_string()),
        )]);
        let tags = target
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
        let entity =
            Entity::new_with_tags(uid("Target", &target.name)?, attrs, HashSet::new(), tags)
                .map_err(|e| PolicyError::Entities(format!("target {}: {e}", target.name)))?;
        entities.push(entity);
    }
    Entities::from_entities(entities, Some(schema))
        .map_err(|e| PolicyError::Entities(e.to_string()))
}
