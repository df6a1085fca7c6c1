//! The 0.1.0 mapper world, generated from the frozen copy in
//! `wit-history/0.1.0`. Its records are the current ones (`types` did not
//! change), so only the exported `mapper-api` has types of its own.
//!
//! A 0.1.0 mapper has no `decide`: it answers `map-items`, and states the
//! write policy in two route attributes, read here once:
//! `update_existing = false` and `contact_types_mode = add-only`.

use super::Lift;
use syncbridge_model as model;

wasmtime::component::bindgen!({
    world: "mapper",
    path: "../../wit-history/0.1.0",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "syncbridge:plugin/types": super::connector::syncbridge::plugin::types,
        "syncbridge:plugin/log": super::connector::syncbridge::plugin::log,
    },
});

use exports::syncbridge::plugin::mapper_api;

/// Route attribute of 0.1.0 mappers: `false` makes the intent create-only.
const ROUTE_UPDATE_EXISTING: &str = "update_existing";
/// Route attribute of 0.1.0 mappers: `add-only` keeps the target's contact types.
const ROUTE_CONTACT_TYPES_MODE: &str = "contact_types_mode";

fn route<'a>(route: &'a [model::Attribute], name: &str) -> Option<&'a str> {
    route
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.trim())
}

/// The policy a 0.1.0 intent states in its route attributes.
pub fn policy_of(route_attributes: &[model::Attribute]) -> model::WritePolicy {
    let update_existing = !route(route_attributes, ROUTE_UPDATE_EXISTING)
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let contact_types = if route(route_attributes, ROUTE_CONTACT_TYPES_MODE)
        .is_some_and(|v| v.eq_ignore_ascii_case("add-only"))
    {
        model::ContactTypesMode::AddOnly
    } else {
        model::ContactTypesMode::Replace
    };
    model::WritePolicy {
        update_existing,
        contact_types,
    }
}

impl Lift<model::Intent> for mapper_api::Intent {
    fn lift(self) -> model::Intent {
        let route: Vec<model::Attribute> = self.route.lift();
        model::Intent {
            policy: policy_of(&route),
            source_id: self.source_id,
            action: match self.action {
                mapper_api::IntentAction::Upsert => model::IntentAction::Upsert,
                mapper_api::IntentAction::Remove => model::IntentAction::Remove,
                mapper_api::IntentAction::Skip => model::IntentAction::Skip,
            },
            body: self.body.lift(),
            match_keys: self.match_keys,
            route,
            rule: self.rule,
            reason: self.reason,
        }
    }
}

impl Lift<model::Explanation> for mapper_api::Explanation {
    fn lift(self) -> model::Explanation {
        model::Explanation {
            source_id: self.source_id,
            steps: self.steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, value: &str) -> model::Attribute {
        model::Attribute {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn reads_the_policy_from_route_attributes() {
        assert_eq!(policy_of(&[]), model::WritePolicy::default());
        let p = policy_of(&[
            attr("update_existing", " FALSE "),
            attr("contact_types_mode", "add-only"),
        ]);
        assert!(!p.update_existing);
        assert_eq!(p.contact_types, model::ContactTypesMode::AddOnly);
        assert!(policy_of(&[attr("update_existing", "true")]).update_existing);
    }
}
