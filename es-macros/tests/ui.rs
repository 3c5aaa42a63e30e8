//! Compile-time checks of the macros: each `ui/<macro>/<mistake>.rs` must fail to compile with
//! exactly the message in its `.stderr`; each `ui/pass/*.rs` must compile and run.
//!
//! To accept changed messages after improving one: `TRYBUILD=overwrite cargo test -p es-macros --test ui`,
//! then read every changed `.stderr` as a newcomer would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn macro_errors_and_passing_cases() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/aggregate/*.rs");
    cases.compile_fail("ui/event/*.rs");
    cases.compile_fail("ui/command/*.rs");
    cases.compile_fail("ui/projection/*.rs");
    cases.compile_fail("ui/process/*.rs");
    cases.pass("ui/pass/*.rs");
}
