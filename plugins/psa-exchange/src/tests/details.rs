use crate::details::{with_block, without_block, Lines, HEADER};
use syncbridge_sdk::types::Attribute;

fn attr(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn the_block_follows_the_own_text_under_its_header_in_a_fixed_order() {
    let mut lines = Lines::default();
    lines.add("Company", "Contoso (174)");
    lines.add("Blank", "  ");
    lines.add_list("Tickets", &["1", "", "task:2"]);
    lines.add_attributes(
        &[attr("zeta", "1"), attr("alpha", "b"), attr("alpha", "a")],
        |n| n.to_uppercase(),
    );
    let expected =
        "-- PSA fields --\nCompany: Contoso (174)\nTickets: 1, task:2\nALPHA: a\nALPHA: b\nZETA: 1";
    assert_eq!(lines.block().as_deref(), Some(expected));
    assert_eq!(
        with_block(Some("Own text\n\n"), &lines).as_deref(),
        Some(format!("Own text\n\n{expected}").as_str())
    );
    assert_eq!(with_block(Some("  "), &lines).as_deref(), Some(expected));
    assert_eq!(
        with_block(Some("Own"), &Lines::default()).as_deref(),
        Some("Own")
    );
    assert_eq!(with_block(None, &Lines::default()), None);
}

#[test]
fn values_stay_on_one_line() {
    let mut lines = Lines::default();
    lines.add("Note", "first\r\nsecond\n\tthird ");
    assert_eq!(
        lines.block().as_deref(),
        Some("-- PSA fields --\nNote: first second third")
    );
}

#[test]
fn the_block_comes_off_again_also_with_windows_line_breaks() {
    let mut lines = Lines::default();
    lines.add("Company ID", "174");
    let body = with_block(Some("Agenda\nline 2"), &lines).unwrap();
    assert_eq!(without_block(&body).as_deref(), Some("Agenda\nline 2"));
    assert_eq!(
        without_block(&body.replace('\n', "\r\n")).as_deref(),
        Some("Agenda\nline 2")
    );
    assert_eq!(without_block(&lines.block().unwrap()), None);
    assert_eq!(
        without_block("No block here").as_deref(),
        Some("No block here")
    );
    // The header only counts at the start of a paragraph.
    let quoted = format!("see {HEADER} below");
    assert_eq!(without_block(&quoted).as_deref(), Some(quoted.as_str()));
    assert_eq!(without_block("  "), None);
}
