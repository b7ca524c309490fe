//! The schema is embedded by `sqlx::migrate!`: a new or changed migration
//! must rebuild the server (sqlx's advice, as `sqlx migrate build-script`).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
