use super::*;
use crate::{Direction, Import, Options};

fn parse(json: &str) -> Result<Options, PluginError> {
    <PsaExchange as Mapper>::parse_options(json)
}

fn invalid_message(e: PluginError) -> String {
    match e {
        PluginError::Invalid(i) => i.message,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn options_default_to_all_detail_and_free_time() {
    let o = parse(TO_PSA).unwrap();
    assert_eq!(o.direction, Direction::ToPsa);
    assert_eq!(o.import, Import::All);
    assert!(o.import_free_time);
    let o =
        parse(r#"{"direction":"to-psa","import":"no-detail","import_free_time":false}"#).unwrap();
    assert_eq!(
        (o.direction, o.import, o.import_free_time),
        (Direction::ToPsa, Import::NoDetail, false)
    );
    assert_eq!(parse(TO_EXCHANGE).unwrap().direction, Direction::ToExchange);
}

#[test]
fn unknown_fields_and_bad_values_are_refused_by_name() {
    let e = invalid_message(
        parse(r#"{"direction":"to-psa","import_appointments":"all"}"#).unwrap_err(),
    );
    assert!(e.contains("unknown field `import_appointments`"), "{e}");
    let e = invalid_message(parse(r#"{"import":"all"}"#).unwrap_err());
    assert!(e.contains("missing field `direction`"), "{e}");
    let e = invalid_message(parse(r#"{"direction":"both"}"#).unwrap_err());
    assert!(e.contains("direction"), "{e}");
    let e = invalid_message(parse(r#"{"direction":"to-psa","import":"none"}"#).unwrap_err());
    assert!(e.contains("import"), "{e}");
    let e =
        invalid_message(parse(r#"{"direction":"to-psa","import_free_time":"yes"}"#).unwrap_err());
    assert!(e.contains("import_free_time"), "{e}");

    // The same refusal through the export the host calls.
    let refused = exports::decide_any::<PsaExchange>(Vec::new(), r#"{"direction":"to-psa","x":1}"#)
        .unwrap_err()
        .describe();
    assert!(
        refused.starts_with("invalid") && refused.contains("`x`"),
        "{refused}"
    );
}

#[test]
fn the_schema_the_host_checks_refuses_unknown_fields() {
    let schema: serde_json::Value =
        serde_json::from_str(&<PsaExchange as Mapper>::options_schema()).unwrap();
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    assert_eq!(
        schema["required"],
        serde_json::json!(["direction"]),
        "{schema}"
    );
    let props = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["direction", "import", "import_free_time"]);
    let text = schema.to_string();
    for value in ["to-exchange", "to-psa", "all", "no-detail"] {
        assert!(
            text.contains(&format!("\"{value}\"")),
            "{value} missing: {text}"
        );
    }
}
