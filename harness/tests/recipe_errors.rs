//! Bad recipes fail with a `RecipeError` that names `file:line:col` and the fix. The recipes are
//! cases of the bad-input corpus `tests/bad/`, which the e2e tests run through the binary.

use rsfm_harness::recipe::{self, ErrorKind, RecipeError};
use std::path::PathBuf;

/// The folder of the corpus case `case`.
fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/bad")).join(case)
}

/// Loads `tests/bad/<case>/recipe.toml` and checks the error's kind and `recipe.toml:line:col`.
fn error_at(case: &str, kind: ErrorKind, line: usize, col: usize) -> (RecipeError, String) {
    error_in(case, "recipe.toml", kind, line, col)
}

/// Loads `tests/bad/<case>/recipe.toml` and checks that the error is at `name:line:col`.
fn error_in(
    case: &str,
    name: &str,
    kind: ErrorKind,
    line: usize,
    col: usize,
) -> (RecipeError, String) {
    let errors =
        recipe::load(&case_dir(case).join("recipe.toml")).expect_err("the recipe should not load");
    let error = errors.first().clone();
    let shown = error.to_string();
    assert_eq!(error.kind, kind, "{shown}");
    let location = error.location.clone().expect("a location");
    assert_eq!(location.file.file_name().unwrap(), name, "{shown}");
    assert_eq!((location.line, location.col), (line, col), "{shown}");
    let prefix = format!("{name}:{line}:{col}: error: ");
    assert!(shown.contains(&prefix), "{shown}");
    (error, shown)
}

#[test]
fn unknown_key_lists_the_allowed_keys() {
    let (_, shown) = error_at("recipe-misspelt-base-lr", ErrorKind::UnknownKey, 7, 1);
    assert!(
        shown.contains("unknown key `base_lrr` in [stage.train]"),
        "{shown}"
    );
    assert!(shown.contains("help: did you mean `base_lr`?"), "{shown}");
    for allowed in ["`kind`", "`needs`", "`mask_ratio`", "`steps`", "`base_lr`"] {
        assert!(shown.contains(allowed), "{allowed} missing in {shown}");
    }
}

#[test]
fn wrong_type_names_expected_and_found() {
    let (_, shown) = error_at("recipe-epochs-not-integer", ErrorKind::WrongType, 7, 10);
    assert!(
        shown.contains("wrong type for `stage.train.epochs`: expected integer, found string"),
        "{shown}"
    );
    assert!(shown.contains("e.g. `epochs = 8`"), "{shown}");
}

#[test]
fn needs_cycle_lists_the_cycle() {
    let (_, shown) = error_at("recipe-needs-cycle", ErrorKind::NeedsCycle, 7, 10);
    assert!(shown.contains("cycle in `needs`: a -> b -> a"), "{shown}");
    assert!(shown.contains("help: "), "{shown}");
}

#[test]
fn unknown_needs_lists_the_stages() {
    let (_, shown) = error_at(
        "recipe-needs-misspelt-stage",
        ErrorKind::UnknownNeeds,
        10,
        22,
    );
    assert!(shown.contains("needs `generat`"), "{shown}");
    assert!(shown.contains("stages: `generate`, `square`"), "{shown}");
}

#[test]
fn missing_extends_file_is_reported_at_its_entry() {
    let (_, shown) = error_at("recipe-missing-extends", ErrorKind::MissingExtends, 1, 12);
    assert!(shown.contains("`missing.toml` not found"), "{shown}");
    assert!(
        shown.contains("relative to the folder of the file"),
        "{shown}"
    );
}

#[test]
fn extends_cycle_is_reported_where_it_closes() {
    let (_, shown) = error_in(
        "recipe-extends-cycle",
        "base.toml",
        ErrorKind::ExtendsCycle,
        1,
        12,
    );
    assert!(shown.contains("`extends` cycle:"), "{shown}");
    let cycle = &shown[shown.find("cycle:").unwrap()..];
    let recipe = cycle.find("recipe.toml").unwrap();
    let base = cycle.find("base.toml").unwrap();
    assert!(
        recipe < base && cycle.rfind("recipe.toml").unwrap() > base,
        "{shown}"
    );
}

#[test]
fn undefined_variable_names_what_is_defined() {
    let (_, shown) = error_at(
        "recipe-misspelt-matrix-variable",
        ErrorKind::UndefinedVariable,
        9,
        17,
    );
    assert!(shown.contains("undefined variable `{sise}`"), "{shown}");
    assert!(shown.contains("matrix variables: `size`"), "{shown}");
    assert!(shown.contains("`{out}`"), "{shown}");
}

#[test]
fn input_placeholder_must_be_needed() {
    let (_, shown) = error_at(
        "recipe-input-stage-not-needed",
        ErrorKind::UndefinedVariable,
        10,
        16,
    );
    assert!(shown.contains("`{input.a}`"), "{shown}");
    assert!(shown.contains("add \"a\" to `needs`"), "{shown}");
}

#[test]
fn empty_matrix_axis_is_reported() {
    let (_, shown) = error_at("recipe-matrix-empty-axis", ErrorKind::EmptyMatrixAxis, 2, 8);
    assert!(
        shown.contains("matrix axis `matrix.size` is empty"),
        "{shown}"
    );
    assert!(shown.contains("at least one value"), "{shown}");
}

#[test]
fn bad_provenance_source_lists_the_prefixes() {
    let (_, shown) = error_at(
        "recipe-provenance-not-a-prefix",
        ErrorKind::BadProvenance,
        7,
        31,
    );
    assert!(
        shown.contains("unknown provenance source `the paper`"),
        "{shown}"
    );
    for prefix in [
        "`paper`",
        "`secondary`",
        "`context`",
        "`ours`",
        "`reconstructed`",
        "`assumed:`",
        "`default:`",
    ] {
        assert!(shown.contains(prefix), "{prefix} missing in {shown}");
    }
}

#[test]
fn toml_syntax_error_has_a_position() {
    let (_, shown) = error_at("recipe-toml-syntax", ErrorKind::Syntax, 1, 12);
    assert!(shown.contains("invalid TOML"), "{shown}");
}

#[test]
fn invalid_stage_name_is_rejected() {
    let (_, shown) = error_at("recipe-stage-name-at-sign", ErrorKind::BadName, 4, 8);
    assert!(shown.contains("invalid stage name `train@2`"), "{shown}");
}

#[test]
fn a_missing_recipe_file_names_the_path() {
    let errors = recipe::load(&case_dir("no-such-case").join("no-such-recipe.toml")).unwrap_err();
    let error = errors.first();
    assert_eq!(error.kind, ErrorKind::Io);
    assert!(error.to_string().contains("no-such-recipe.toml"), "{error}");
}
