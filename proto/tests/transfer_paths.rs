//! Relative paths and manifests: every hostile name of design §5 refused with the right
//! reason, good names accepted, whole-manifest rules, and properties over arbitrary input.

use proptest::prelude::*;
use proto::transfer::{
    FileEntry, MAX_COMPONENT_LEN, MAX_COMPONENTS, MAX_FILES, MAX_PATH_LEN, MAX_TOTAL_SIZE,
    Manifest, ManifestError, PathError, RelPath, TransferId,
};

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
            prop_assert_eq!(p.as_str(), s.as_str());
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
