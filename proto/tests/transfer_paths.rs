//! Relative paths and manifests: every hostile name of design §5 refused with the right
//! reason, good names accepted, whole-manifest rules, and properties over arbitrary input.

use proptest::prelude::*;
use proto::transfer::{
    FileEntry, MAX_COMPONENT_LEN, MAX_COMPONENTS, MAX_FILES, MAX_PATH_LEN, MAX_TOTAL_SIZE,
    Manifest, ManifestError, PathError, RelPath, TransferId,
};
use unicode_normalization::{UnicodeNormalization, is_nfc};

/// The variant name of an error, so cases can be listed compactly.
fn kind(e: &PathError) -> &'static str {
    match e {
        PathError::Empty => "Empty",
        PathError::TooLong { .. } => "TooLong",
        PathError::Absolute => "Absolute",
        PathError::TooManyComponents { .. } => "TooManyComponents",
        PathError::EmptyComponent { .. } => "EmptyComponent",
        PathError::ComponentTooLong { .. } => "ComponentTooLong",
        PathError::DotComponent { .. } => "DotComponent",
        PathError::ControlChar { .. } => "ControlChar",
        PathError::Backslash { .. } => "Backslash",
        PathError::Colon { .. } => "Colon",
        PathError::Reserved { .. } => "Reserved",
        PathError::TrailingDotOrSpace { .. } => "TrailingDotOrSpace",
        PathError::LookAlike { .. } => "LookAlike",
        PathError::BidiControl { .. } => "BidiControl",
        PathError::Invisible { .. } => "Invisible",
    }
}

#[test]
fn hostile_names_are_refused_with_the_right_reason() {
    let long = "x".repeat(256);
    let long_inside = format!("a/{long}");
    let cases: &[(&str, &str)] = &[
        ("", "Empty"),
        (".", "DotComponent"),
        ("..", "DotComponent"),
        ("../x", "DotComponent"),
        ("a/../../b", "DotComponent"),
        ("a/./b", "DotComponent"),
        ("/etc/passwd", "Absolute"),
        ("/", "Absolute"),
        ("C:\\x", "Colon"),
        ("C:x", "Colon"),
        ("c:", "Colon"),
        ("file.txt:stream", "Colon"),
        ("a\\b", "Backslash"),
        ("\\\\server\\share", "Backslash"),
        ("..\\x", "Backslash"),
        ("a\0b", "ControlChar"),
        ("\0", "ControlChar"),
        ("a\nb", "ControlChar"),
        ("a\rb", "ControlChar"),
        ("tab\there", "ControlChar"),
        ("esc\u{1b}[31m", "ControlChar"),
        ("del\u{7f}", "ControlChar"),
        ("nel\u{85}", "ControlChar"),
        ("csi\u{9b}", "ControlChar"),
        (&long, "ComponentTooLong"),
        (&long_inside, "ComponentTooLong"),
        ("con", "Reserved"),
        ("CON", "Reserved"),
        ("CON.txt", "Reserved"),
        ("dir/con.tar.gz", "Reserved"),
        ("com1", "Reserved"),
        ("COM0", "Reserved"),
        ("lpt9.log", "Reserved"),
        ("Lpt0", "Reserved"),
        ("prn", "Reserved"),
        ("aux.", "Reserved"),
        ("nul ", "Reserved"),
        ("nul . .", "Reserved"),
        ("com\u{b2}", "Reserved"),
        ("CONOUT$", "Reserved"),
        ("trailing.", "TrailingDotOrSpace"),
        ("trailing ", "TrailingDotOrSpace"),
        ("dir./x", "TrailingDotOrSpace"),
        ("...", "TrailingDotOrSpace"),
        ("a//b", "EmptyComponent"),
        ("a/", "EmptyComponent"),
        ("a/b/", "EmptyComponent"),
    ];
    for (path, want) in cases {
        match RelPath::new(path) {
            Ok(p) => panic!("{path:?} was accepted as {p:?}"),
            Err(e) => assert_eq!(kind(&e), *want, "{path:?}: {e}"),
        }
    }
}

#[test]
fn errors_name_the_component() {
    assert_eq!(
        RelPath::new("a/../../b").unwrap_err(),
        PathError::DotComponent {
            index: 1,
            component: "..".into()
        }
    );
    assert_eq!(
        RelPath::new("ok/sub/LPT9.log").unwrap_err(),
        PathError::Reserved {
            index: 2,
            component: "LPT9.log".into()
        }
    );
    assert_eq!(
        RelPath::new("x/a\u{85}b").unwrap_err(),
        PathError::ControlChar {
            index: 1,
            component: "a\u{85}b".into(),
            ch: '\u{85}'
        }
    );
    assert_eq!(
        RelPath::new("a//b").unwrap_err(),
        PathError::EmptyComponent { index: 1 }
    );
    assert_eq!(
        RelPath::new(&"y".repeat(256)).unwrap_err(),
        PathError::ComponentTooLong {
            index: 0,
            component: "y".repeat(256),
            len: 256
        }
    );
    let msg = RelPath::new("a/../../b").unwrap_err().to_string();
    assert_eq!(msg, "component 1 is \"..\": '.' and '..' are not allowed");
}

#[test]
fn path_limits_are_inclusive() {
    // 255 bytes of UTF-8 in one component is fine; 256 is not (multi-byte characters count
    // as their bytes).
    assert!(RelPath::new(&"x".repeat(MAX_COMPONENT_LEN)).is_ok());
    let e_acute = "é".repeat(127) + "x"; // 255 bytes
    assert!(RelPath::new(&e_acute).is_ok());
    let over = "é".repeat(128); // 256 bytes
    assert!(matches!(
        RelPath::new(&over),
        Err(PathError::ComponentTooLong { len: 256, .. })
    ));

    let at_max = vec!["d"; MAX_COMPONENTS].join("/");
    assert!(RelPath::new(&at_max).is_ok());
    let over = vec!["d"; MAX_COMPONENTS + 1].join("/");
    assert_eq!(
        RelPath::new(&over).unwrap_err(),
        PathError::TooManyComponents {
            count: MAX_COMPONENTS + 1
        }
    );

    // 16 components of 255 bytes plus 15 slashes: 4095 bytes.
    let comp = "z".repeat(MAX_COMPONENT_LEN);
    let mut long = vec![comp.as_str(); 16].join("/");
    assert_eq!(long.len(), 4095);
    long.push('z');
    assert_eq!(long.len(), MAX_PATH_LEN);
    assert!(RelPath::new(&long).is_err(), "last component is 256 bytes");
    let fits = format!("{}/y", vec![comp.as_str(); 15].join("/"));
    assert!(RelPath::new(&fits).is_ok());
    let too_long = format!("{}/{}", vec![comp.as_str(); 16].join("/"), "y");
    assert_eq!(too_long.len(), MAX_PATH_LEN + 1);
    assert_eq!(
        RelPath::new(&too_long).unwrap_err(),
        PathError::TooLong {
            len: MAX_PATH_LEN + 1
        }
    );
}

#[test]
fn good_names_are_accepted_unchanged() {
    for path in [
        "a",
        "a/b/c.txt",
        "My Documents/report final.pdf",
        "archive.tar.gz",
        ".hidden",
        ".config/app/settings.toml",
        "..double-dot-prefix",
        "a..b",
        "日本語/ファイル.txt",
        "émigré/naïve café.md",
        "emoji 🦀.rs",
        "console.log",
        "com10",
        "lpt",
        "nullable",
        "con_",
        "x/auxiliary/prn-notes.txt",
        "-dash",
        "100%",
        "what?.txt",
    ] {
        let p = RelPath::new(path).unwrap_or_else(|e| panic!("{path:?} refused: {e}"));
        assert_eq!(p.as_str(), path);
        assert_eq!(p.to_string(), path);
        assert_eq!(p.components().collect::<Vec<_>>().join("/"), path);
    }
    let p = RelPath::new("a/b/c.txt").unwrap();
    assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c.txt"]);
    assert_eq!(p.file_name(), "c.txt");
    assert_eq!(RelPath::new("solo").unwrap().file_name(), "solo");
}

#[test]
fn serde_validates_paths() {
    let p: RelPath = serde_json::from_str("\"a/b.txt\"").unwrap();
    assert_eq!(p.as_str(), "a/b.txt");
    assert_eq!(serde_json::to_string(&p).unwrap(), "\"a/b.txt\"");
    for bad in [
        "\"../x\"",
        "\"/etc/passwd\"",
        "\"a\\\\b\"",
        "\"con\"",
        "\"\"",
    ] {
        assert!(serde_json::from_str::<RelPath>(bad).is_err(), "{bad}");
    }
    let wire = postcard::to_stdvec("../etc").unwrap();
    assert!(postcard::from_bytes::<RelPath>(&wire).is_err());
}

// ---------------------------------------------------------------------------------------------
// Manifests

fn entry(path: &str, size: u64) -> FileEntry {
    FileEntry {
        path: RelPath::new(path).unwrap(),
        size,
        hash: [0; 32],
    }
}

fn manifest(files: Vec<FileEntry>) -> Manifest {
    Manifest {
        id: TransferId([9; 16]),
        files,
        dirs: Vec::new(),
    }
}

#[test]
fn manifest_rules() {
    let ok = manifest(vec![
        entry("a/b.txt", 1),
        entry("a/c.txt", 2),
        entry("ab", 3),
    ]);
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(ok.total_size(), 6);
    assert_eq!(ok.file(2).unwrap().path.as_str(), "ab");
    assert!(ok.file(3).is_none());

    assert_eq!(manifest(vec![]).validate(), Err(ManifestError::Empty));

    assert_eq!(
        manifest(vec![entry("x", 1), entry("y", 1), entry("x", 2)]).validate(),
        Err(ManifestError::Duplicate {
            path: RelPath::new("x").unwrap()
        })
    );
    assert_eq!(
        manifest(vec![entry("Dir/Readme.md", 1), entry("dir/README.md", 1)]).validate(),
        Err(ManifestError::CaseCollision {
            first: RelPath::new("Dir/Readme.md").unwrap(),
            second: RelPath::new("dir/README.md").unwrap(),
        })
    );
    // Non-ASCII case folding too.
    assert!(matches!(
        manifest(vec![entry("ÉTÉ", 1), entry("été", 1)]).validate(),
        Err(ManifestError::CaseCollision { .. })
    ));
    assert_eq!(
        manifest(vec![entry("a", 1), entry("a/b", 1)]).validate(),
        Err(ManifestError::FileIsDirectory {
            file: RelPath::new("a").unwrap(),
            inside: RelPath::new("a/b").unwrap(),
        })
    );
    // Order does not matter, depth does not matter, and the check ignores case.
    assert_eq!(
        manifest(vec![entry("x/y/z/deep", 1), entry("X/Y", 1)]).validate(),
        Err(ManifestError::FileIsDirectory {
            file: RelPath::new("X/Y").unwrap(),
            inside: RelPath::new("x/y/z/deep").unwrap(),
        })
    );
    // A shared prefix that is not a whole component is fine.
    assert_eq!(
        manifest(vec![entry("a", 1), entry("ab/c", 1)]).validate(),
        Ok(())
    );
}

#[test]
fn manifest_file_count_limits() {
    let files = |n: usize| (0..n).map(|i| entry(&format!("f{i}"), 0)).collect();
    assert_eq!(manifest(files(MAX_FILES)).validate(), Ok(()));
    assert_eq!(
        manifest(files(MAX_FILES + 1)).validate(),
        Err(ManifestError::TooManyFiles {
            count: MAX_FILES + 1
        })
    );
}

#[test]
fn manifest_size_limits_never_overflow() {
    assert_eq!(
        manifest(vec![entry("a", MAX_TOTAL_SIZE)]).validate(),
        Ok(())
    );
    assert_eq!(
        manifest(vec![entry("a", MAX_TOTAL_SIZE), entry("b", 1)]).validate(),
        Err(ManifestError::TooLarge)
    );
    assert_eq!(
        manifest(vec![entry("a", MAX_TOTAL_SIZE + 1)]).validate(),
        Err(ManifestError::TooLarge)
    );
    let huge = manifest(vec![entry("a", u64::MAX), entry("b", u64::MAX)]);
    assert_eq!(huge.validate(), Err(ManifestError::TooLarge));
    assert_eq!(huge.total_size(), u64::MAX);
}

#[test]
fn manifest_json_uses_hex_and_validates() {
    let m = manifest(vec![FileEntry {
        path: RelPath::new("a.txt").unwrap(),
        size: 5,
        hash: [0xab; 32],
    }]);
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"id":"{}","files":[{{"path":"a.txt","size":5,"hash":"{}"}}]}}"#,
            "09".repeat(16),
            "ab".repeat(32)
        )
    );
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);

    let hostile = json.replace("a.txt", "../a.txt");
    assert!(serde_json::from_str::<Manifest>(&hostile).is_err());
    let short_hash = json.replace(&"ab".repeat(32), "abcd");
    assert!(serde_json::from_str::<Manifest>(&short_hash).is_err());
    let empty = format!(r#"{{"id":"{}","files":[]}}"#, "09".repeat(16));
    assert!(serde_json::from_str::<Manifest>(&empty).is_err());
}

// ---------------------------------------------------------------------------------------------
// Properties

/// One valid component: mostly ordinary names, with dots, spaces and non-ASCII inside.
fn good_component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_é日🦀][a-zA-Z0-9_ .é日🦀-]{0,16}[a-zA-Z0-9_é日🦀]|[a-zA-Z0-9_]"
        .prop_filter("reserved or otherwise invalid", |c| RelPath::new(c).is_ok())
}

fn good_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(good_component(), 1..6).prop_map(|c| c.join("/"))
}

/// One component that is refused wherever it appears.
fn bad_component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("C:".to_string()),
        Just("a\\b".to_string()),
        Just("x".repeat(256)),
        "(con|prn|aux|nul|com[0-9]|lpt[0-9])(\\.[a-z]{1,3})?",
        "[a-z]{1,5}[. ]",
        (
            "[a-z]{0,3}",
            any::<char>().prop_filter("control", |c| c.is_control()),
            "[a-z]{0,3}"
        )
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_is_checked_without_panicking(s in ".{0,80}") {
        if let Ok(p) = RelPath::new(&s) {
            prop_assert_eq!(p.as_str(), s.nfc().collect::<String>());
            prop_assert!(!s.starts_with('/'));
            for c in p.components() {
                prop_assert!(!c.is_empty() && c != "." && c != "..");
                prop_assert!(c.len() <= MAX_COMPONENT_LEN);
                prop_assert!(!c.chars().any(|ch| ch.is_control() || ch == '\\' || ch == ':'));
                prop_assert!(!c.ends_with(['.', ' ']));
            }
        }
    }

    #[test]
    fn any_bytes_as_path_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&b);
        let _ = RelPath::new(&s);
    }

    #[test]
    fn good_paths_round_trip(s in good_path()) {
        let p = RelPath::new(&s).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(serde_json::from_str::<RelPath>(&json).unwrap(), p.clone());
        let wire = postcard::to_stdvec(&p).unwrap();
        prop_assert_eq!(postcard::from_bytes::<RelPath>(&wire).unwrap(), p);
    }

    #[test]
    fn one_bad_component_spoils_any_path(
        before in proptest::collection::vec(good_component(), 0..4),
        bad in bad_component(),
        after in proptest::collection::vec(good_component(), 0..4),
    ) {
        let mut parts = before;
        parts.push(bad);
        parts.extend(after);
        let path = parts.join("/");
        prop_assert!(RelPath::new(&path).is_err(), "{:?} accepted", path);
    }

    #[test]
    fn case_variants_always_collide(s in good_path()) {
        let upper = s.to_uppercase();
        prop_assume!(upper != s && RelPath::new(&upper).is_ok());
        let m = manifest(vec![entry(&s, 1), entry(&upper, 1)]);
        let is_collision = matches!(m.validate(), Err(ManifestError::CaseCollision { .. }));
        prop_assert!(is_collision);
    }
}

// ---------------------------------------------------------------------------------------------
// Unicode: one normal form, no look-alikes, no bidi controls, no invisible characters

#[test]
fn composed_and_decomposed_spellings_are_one_path() {
    let composed = RelPath::new("dir/caf\u{e9}.txt").unwrap();
    let decomposed = RelPath::new("dir/cafe\u{301}.txt").unwrap();
    assert_eq!(composed, decomposed);
    assert_eq!(decomposed.as_str(), "dir/caf\u{e9}.txt");
    // Hangul decomposed into jamo, and a directory name.
    let jamo: String = "한글".nfd().collect();
    assert_ne!(jamo, "한글");
    assert_eq!(
        RelPath::new(&format!("{jamo}/a")).unwrap().as_str(),
        "한글/a"
    );
    // Serde normalises too: what a receiver decodes is NFC.
    let p: RelPath = serde_json::from_str("\"cafe\\u0301\"").unwrap();
    assert_eq!(p.as_str(), "caf\u{e9}");
    // Lengths count the NFC form: 255 bytes as written, 170 as NFC.
    let long = "e\u{301}".repeat(85);
    assert_eq!(RelPath::new(&long).unwrap().as_str().len(), 170);
}

#[test]
fn spellings_of_one_name_collide_in_a_manifest() {
    assert_eq!(
        manifest(vec![entry("caf\u{e9}", 1), entry("cafe\u{301}", 2)]).validate(),
        Err(ManifestError::Duplicate {
            path: RelPath::new("caf\u{e9}").unwrap()
        })
    );
    // Form and case together.
    assert!(matches!(
        manifest(vec![entry("caf\u{e9}/x", 1), entry("CAFE\u{301}/X", 2)]).validate(),
        Err(ManifestError::CaseCollision { .. })
    ));
    // A file in one spelling, a directory in the other.
    assert!(matches!(
        manifest(vec![entry("cafe\u{301}", 1), entry("caf\u{e9}/inside", 2)]).validate(),
        Err(ManifestError::FileIsDirectory { .. })
    ));
    // Distinct letters stay distinct.
    assert_eq!(
        manifest(vec![
            entry("caf\u{e9}", 1),
            entry("cafe", 2),
            entry("caf\u{e8}", 3)
        ])
        .validate(),
        Ok(())
    );
}

#[test]
fn deceptive_characters_are_refused_naming_the_character() {
    // (path, kind, the character, text the reason must hold)
    let cases: &[(&str, &str, char, &str)] = &[
        (
            "\u{ff0e}\u{ff0e}\u{ff0f}x",
            "LookAlike",
            '\u{ff0e}',
            "U+FF0E FULLWIDTH FULL STOP",
        ),
        (
            "a\u{ff0f}b",
            "LookAlike",
            '\u{ff0f}',
            "U+FF0F FULLWIDTH SOLIDUS, which reads as \"/\"",
        ),
        (
            "a\u{ff3c}b",
            "LookAlike",
            '\u{ff3c}',
            "U+FF3C FULLWIDTH REVERSE SOLIDUS",
        ),
        (
            "etc\u{2215}passwd",
            "LookAlike",
            '\u{2215}',
            "U+2215 DIVISION SLASH",
        ),
        (
            "1\u{2044}2",
            "LookAlike",
            '\u{2044}',
            "U+2044 FRACTION SLASH",
        ),
        ("a\u{29f8}b", "LookAlike", '\u{29f8}', "U+29F8 BIG SOLIDUS"),
        (
            "photo\u{2024}exe",
            "LookAlike",
            '\u{2024}',
            "U+2024 ONE DOT LEADER",
        ),
        ("\u{2025}", "LookAlike", '\u{2025}', "reads as \"..\""),
        (
            "x\u{fe52}txt",
            "LookAlike",
            '\u{fe52}',
            "U+FE52 SMALL FULL STOP",
        ),
        (
            "a\u{fe68}b",
            "LookAlike",
            '\u{fe68}',
            "U+FE68 SMALL REVERSE SOLIDUS",
        ),
        (
            "\u{2105}",
            "LookAlike",
            '\u{2105}',
            "U+2105, which reads as \"/\"",
        ),
        (
            "invoice\u{202e}fdp.exe",
            "BidiControl",
            '\u{202e}',
            "U+202E RIGHT-TO-LEFT OVERRIDE",
        ),
        ("a\u{202a}b", "BidiControl", '\u{202a}', "U+202A"),
        (
            "a\u{202d}b",
            "BidiControl",
            '\u{202d}',
            "U+202D LEFT-TO-RIGHT OVERRIDE",
        ),
        (
            "a\u{2066}b",
            "BidiControl",
            '\u{2066}',
            "U+2066 LEFT-TO-RIGHT ISOLATE",
        ),
        ("a\u{2069}b", "BidiControl", '\u{2069}', "U+2069"),
        (
            "a\u{200e}",
            "BidiControl",
            '\u{200e}',
            "U+200E LEFT-TO-RIGHT MARK",
        ),
        (
            "\u{200f}b",
            "BidiControl",
            '\u{200f}',
            "U+200F RIGHT-TO-LEFT MARK",
        ),
        (
            "a\u{61c}b",
            "BidiControl",
            '\u{61c}',
            "U+061C ARABIC LETTER MARK",
        ),
        (
            "pay\u{200b}pal",
            "Invisible",
            '\u{200b}',
            "U+200B ZERO WIDTH SPACE",
        ),
        (
            "a\u{200c}b",
            "Invisible",
            '\u{200c}',
            "U+200C ZERO WIDTH NON-JOINER",
        ),
        (
            "a\u{200d}b",
            "Invisible",
            '\u{200d}',
            "U+200D ZERO WIDTH JOINER",
        ),
        ("a\u{2060}b", "Invisible", '\u{2060}', "U+2060 WORD JOINER"),
        (
            "a\u{2063}b",
            "Invisible",
            '\u{2063}',
            "U+2063 INVISIBLE SEPARATOR",
        ),
        (
            "a\u{2064}b",
            "Invisible",
            '\u{2064}',
            "U+2064 INVISIBLE PLUS",
        ),
        (
            "\u{feff}a",
            "Invisible",
            '\u{feff}',
            "U+FEFF ZERO WIDTH NO-BREAK SPACE",
        ),
        (
            "soft\u{ad}hyphen",
            "Invisible",
            '\u{ad}',
            "U+00AD SOFT HYPHEN",
        ),
    ];
    for (path, want, ch, text) in cases {
        let inside = format!("ok/{path}");
        for p in [path.to_string(), inside] {
            let e = RelPath::new(&p).expect_err(&p);
            assert_eq!(kind(&e), *want, "{p:?}: {e}");
            let found = match &e {
                PathError::LookAlike { ch, .. }
                | PathError::BidiControl { ch, .. }
                | PathError::Invisible { ch, .. } => *ch,
                _ => unreachable!(),
            };
            assert_eq!(found, *ch, "{p:?}");
            let msg = e.to_string();
            assert!(msg.contains(text), "{p:?}: {msg}");
            // The message itself never carries a raw bidi control.
            assert!(
                !msg.contains(['\u{202e}', '\u{202a}', '\u{2066}']),
                "{msg:?}"
            );
        }
    }
    assert_eq!(
        RelPath::new("ok/\u{ff0e}\u{ff0e}").unwrap_err(),
        PathError::LookAlike {
            index: 1,
            component: "\u{ff0e}\u{ff0e}".into(),
            ch: '\u{ff0e}',
            reads_as: ".".into(),
        }
    );
}

#[test]
fn ordinary_non_ascii_names_stay_accepted() {
    for path in [
        "naïve/Ærøskøbing.txt",
        "Ελληνικά/αρχείο.pdf",
        "עברית.txt",
        "العربية.doc",
        "中文/文件。txt",
        "Loading….txt",
        "x²+y².png",
        "½ price.txt",
        "ﬁle.txt",
    ] {
        let p = RelPath::new(path).unwrap_or_else(|e| panic!("{path:?} refused: {e}"));
        assert_eq!(p.as_str(), path.nfc().collect::<String>());
    }
}

/// The characters the rules name explicitly (look-alikes, bidi controls, invisibles).
fn listed_deceptive(ch: char) -> bool {
    matches!(ch,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}'
        | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{ad}' | '\u{61c}'
        | '\u{2024}' | '\u{2025}' | '\u{fe52}' | '\u{ff0e}' | '\u{2215}'
        | '\u{2044}' | '\u{29f8}')
}

/// Characters that stress normalisation and the refusal list.
fn unicode_char() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        "[a-z./]".prop_map(|s| s.chars().next().unwrap()),
        (0x300u32..0x370).prop_map(|c| char::from_u32(c).unwrap()), // combining marks
        (0x2000u32..0x2070).prop_map(|c| char::from_u32(c).unwrap()), // spaces, bidi, joiners
        (0xff00u32..0xff60).prop_map(|c| char::from_u32(c).unwrap()), // fullwidth forms
        (0xfe50u32..0xfe70).prop_map(|c| char::from_u32(c).unwrap()), // small forms
        (0x1100u32..0x11ff).prop_map(|c| char::from_u32(c).unwrap()), // Hangul jamo
        "[éÅñ한ǅﬁ℅Ω]".prop_map(|s| s.chars().next().unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn validation_is_idempotent_and_yields_nfc(
        chars in proptest::collection::vec(unicode_char(), 0..60),
    ) {
        let s: String = chars.into_iter().collect();
        match RelPath::new(&s) {
            Ok(p) => {
                prop_assert!(is_nfc(p.as_str()), "{:?}", p);
                prop_assert_eq!(RelPath::new(p.as_str()), Ok(p.clone()));
                // Any spelling of it is the same path.
                let nfd: String = s.nfd().collect();
                prop_assert_eq!(RelPath::new(&nfd), Ok(p.clone()));
                for c in p.components() {
                    prop_assert!(c.nfkc().collect::<String>() != ".");
                    prop_assert!(c.nfkc().collect::<String>() != "..");
                    prop_assert!(!c.nfkc().any(|ch| ch == '\\'));
                    prop_assert!(!c.chars().any(listed_deceptive), "{:?}", c);
                    prop_assert!(!c.nfkc().any(|ch| ch == '/'));
                }
            }
            // Refusals are the same for every spelling, with the same reason.
            Err(e) => {
                let nfc: String = s.nfc().collect();
                prop_assert_eq!(RelPath::new(&nfc), Err(e));
            }
        }
    }

    #[test]
    fn decomposed_good_paths_are_the_same_path(s in good_path()) {
        let nfd: String = s.nfd().collect();
        prop_assert_eq!(RelPath::new(&nfd).unwrap(), RelPath::new(&s).unwrap());
        let m = manifest(vec![entry(&s, 1), entry(&nfd, 1)]);
        let is_duplicate = matches!(m.validate(), Err(ManifestError::Duplicate { .. }));
        prop_assert!(is_duplicate);
    }

    #[test]
    fn one_deceptive_character_spoils_any_path(
        path in good_path(),
        at in any::<proptest::sample::Index>(),
        ch in proptest::sample::select(vec![
            '\u{ff0e}', '\u{ff0f}', '\u{ff3c}', '\u{2215}', '\u{2044}', '\u{29f8}', '\u{2024}',
            '\u{2025}', '\u{fe52}', '\u{fe68}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}',
            '\u{61c}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{2061}', '\u{2062}',
            '\u{2063}', '\u{2064}', '\u{feff}', '\u{ad}',
        ]),
    ) {
        let boundaries: Vec<usize> = path
            .char_indices()
            .map(|(i, _)| i)
            .chain([path.len()])
            .collect();
        let i = boundaries[at.index(boundaries.len())];
        let mut bad = path.clone();
        bad.insert(i, ch);
        let refused = matches!(
            RelPath::new(&bad),
            Err(PathError::LookAlike { .. } | PathError::BidiControl { .. } | PathError::Invisible { .. })
        );
        prop_assert!(refused, "{:?} accepted", bad);
    }
}
