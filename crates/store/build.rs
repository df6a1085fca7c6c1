//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the
//! directory's files, and cargo does not watch a directory's new files by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
