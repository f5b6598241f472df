//! Fuzzing of the readers of user files: the recipe parser and the DOTA labelTxt / Task1, DIOR-R
//! XML and label-PNG readers get random and mutated input and must answer `Ok` or an error,
//! never panic. Not part of `make test`: `make fuzz` runs it with a fixed budget
//! (`PROPTEST_CASES`, default 256 per property).

use std::path::Path;

use proptest::prelude::*;
use rsfm_harness::recipe;
use rsfm_model::data::formats::{dior, dota};
use rsfm_model::data::image_io::{read_label_png, write_png, Image};

const RECIPE: &str = r#"extends = []

[experiment]
name = { value = "fuzz", source = "assumed: a test" }
seed = 3

[matrix]
size = [1, 2]

[stage.generate]
kind = "command"
argv = ["sh", "make.sh", "{size}", "{out}"]
deps = []
retries = 1
time_limit = "1h"

[stage.train]
kind = "mae-pretrain"
needs = ["generate"]
model = "vit-tiny"
dataset = "generate"
steps = 2
base_lr = { value = 1e-4, source = "paper Table 3" }
"#;

const LABEL: &str =
    "imagesource:GoogleEarth\ngsd:0.5\n10 10 50 10 50 40 10 40 ship 0\n1.5 2 3 4 5 6 7 8 plane 1\n";

const TASK1: &str = "P1 0.9 10 10 50 10 50 40 10 40\nP2 0.1 1 2 3 4 5 6 7 8\n";

const XML: &str = r#"<annotation>
<filename>1.jpg</filename>
<size><width>64</width><height>64</height><depth>3</depth></size>
<object><name>ship</name><difficult>0</difficult>
<robndbox><x_left_top>1</x_left_top><y_left_top>1</y_left_top><x_right_top>20</x_right_top><y_right_top>1</y_right_top>
<x_right_bottom>20</x_right_bottom><y_right_bottom>10</y_right_bottom><x_left_bottom>1</x_left_bottom><y_left_bottom>10</y_left_bottom></robndbox>
<angle>0</angle></object>
</annotation>
"#;

/// An edit of a byte string: overwrite, insert or delete at a position (taken modulo the length).
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

/// Tokens that mean something to the formats, spliced in by the text mutations.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "=",
        "\n",
        ",",
        "{out}",
        "{input.generate}",
        "{{",
        "..",
        "/",
        "-1",
        "1e309",
        "NaN",
        "inf",
        "\u{0}",
        "é",
        "<",
        ">",
        "</",
        "<object>",
        "&amp;",
        "[stage.x]",
        "needs = [\"train\"]",
        "extends = [\"/\"]",
        "kind = \"evaluate\"",
    ])
    .prop_map(|t| t.as_bytes().to_vec())
}

fn mutations() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            3 => edit(),
            1 => (any::<usize>(), token()).prop_map(|(i, t)| Edit::Insert(i, t)),
        ],
        1..6,
    )
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] = *b;
                }
            }
            Edit::Insert(i, new) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
        }
    }
    bytes
}

fn load_recipe(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    std::fs::write(&path, bytes).unwrap();
    let _ = recipe::load(&path);
}

fn label_png_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.png");
    let mut image = Image::new(5, 3, 1);
    for (i, v) in image.data.iter_mut().enumerate() {
        *v = (i % 7) as u8;
    }
    write_png(&path, &image).unwrap();
    std::fs::read(&path).unwrap()
}

proptest! {
    #[test]
    fn recipe_parser_never_panics_on_mutated_recipes(edits in mutations()) {
        load_recipe(&apply(RECIPE.as_bytes(), &edits));
    }

    #[test]
    fn recipe_parser_never_panics_on_random_text(text in "[\\[\\]{}=\"a-z0-9._@ \n-]{0,200}") {
        load_recipe(text.as_bytes());
    }

    #[test]
    fn dota_readers_never_panic(edits in mutations()) {
        let path = Path::new("fuzz/P1.txt");
        let label = String::from_utf8_lossy(&apply(LABEL.as_bytes(), &edits)).into_owned();
        let _ = dota::parse_label(&label, path, dota::ClassCheck::Any);
        let _ = dota::parse_label(&label, path, dota::ClassCheck::Version(dota::DotaVersion::V2_0));
        let task1 = String::from_utf8_lossy(&apply(TASK1.as_bytes(), &edits)).into_owned();
        let _ = dota::parse_task1(&task1, Path::new("fuzz/Task1_ship.txt"), "ship");
    }

    #[test]
    fn dior_reader_never_panics(edits in mutations()) {
        let xml = String::from_utf8_lossy(&apply(XML.as_bytes(), &edits)).into_owned();
        let _ = dior::parse_annotation(&xml, Path::new("fuzz/1.xml"));
    }

    #[test]
    fn label_png_reader_never_panics(edits in mutations()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.png");
        std::fs::write(&path, apply(&label_png_bytes(), &edits)).unwrap();
        let _ = read_label_png(&path);
    }
}
