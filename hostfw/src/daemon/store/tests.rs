use super::*;

fn temp() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hostfw-store-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn snap() -> Snapshot {
    Snapshot {
        origin: Origin::Configured,
        files: vec![SourceFile {
            path: "/etc/hostfw/policies.d/x.yaml".into(),
            text: "a: 1\n".into(),
        }],
        mode: Mode::Enforce,
        cluster: None,
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn confirmed_and_trial_round_trip_with_their_text_and_clear() {
    let dir = temp();
    let store = Store::new(&dir);
    assert_eq!(store.confirmed().expect("read"), None);
    store.save_confirmed(&snap()).expect("save");
    assert_eq!(
        store.confirmed().expect("read"),
        Some(Confirmed::Policy(snap()))
    );
    let text = fs::read_to_string(dir.join(CONFIRMED)).expect("file");
    assert!(text.contains("\"format\":2"), "{text}");
    assert!(text.contains("a: 1"), "the policy's text is stored: {text}");
    let trial = TrialRecord::new(snap(), Duration::from_secs(60));
    store.save_trial(&trial).expect("save trial");
    let back = store.trial().expect("read").expect("present");
    assert_eq!(back, trial);
    assert!(
        back.remaining()
            .is_some_and(|r| r <= Duration::from_secs(60))
    );
    store.clear_trial().expect("clear");
    store.clear_trial().expect("clearing twice is fine");
    assert_eq!(store.trial().expect("read"), None);
    assert!(leftovers(&dir).is_empty());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_expired_trial_has_no_time_left() {
    let t = TrialRecord {
        snapshot: snap(),
        deadline_unix_ms: 1,
    };
    assert_eq!(t.remaining(), None);
}

/// Every kind of damage is an error naming the file, never a panic or a
/// half-read record; the file can then be set aside.
#[test]
fn corrupt_records_are_errors_naming_the_file_and_can_be_set_aside() {
    let good = serde_json::to_string(&ConfirmedRecord {
        format: FORMAT,
        confirmed: snap(),
    })
    .expect("json");
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("truncated", good[..good.len() / 2].to_string()),
        ("garbage", "\u{1}\u{2}not json at all".into()),
        ("null", "null".into()),
        ("an array", "[1,2,3]".into()),
        ("wrong types", good.replace("\"enforce\"", "17")),
        ("unknown mode", good.replace("\"enforce\"", "\"open\"")),
        (
            "unknown field",
            good.replace("\"format\":2", "\"format\":2,\"x\":1"),
        ),
        (
            "newer format",
            good.replace("\"format\":2", "\"format\":99"),
        ),
        (
            "format not a number",
            good.replace("\"format\":2", "\"format\":\"2\""),
        ),
        ("missing files", good.replace("\"files\"", "\"filez\"")),
    ];
    for (what, text) in cases {
        let dir = temp();
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(CONFIRMED), &text).expect("write");
        fs::write(dir.join(TRIAL), &text).expect("write");
        let store = Store::new(&dir);
        let err = store.confirmed().expect_err(what);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{what}: {err}");
        assert!(err.to_string().contains("confirmed.json"), "{what}: {err}");
        let err = store.trial().expect_err(what);
        assert!(err.to_string().contains("trial.json"), "{what}: {err}");
        let aside = store.set_aside(CONFIRMED).expect("set aside");
        assert!(aside.exists() && !dir.join(CONFIRMED).exists(), "{what}");
        assert_eq!(store.confirmed().expect("gone"), None, "{what}");
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_directory_or_a_fifo_in_place_of_a_record_is_corrupt_not_a_hang() {
    let dir = temp();
    fs::create_dir_all(dir.join(CONFIRMED)).expect("dir");
    nix::unistd::mkfifo(&dir.join(TRIAL), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
    let store = Store::new(&dir);
    let err = store.confirmed().expect_err("a directory");
    assert!(err.to_string().contains("a directory"), "{err}");
    let err = store.trial().expect_err("a FIFO");
    assert!(err.to_string().contains("a FIFO"), "{err}");
    store
        .set_aside(CONFIRMED)
        .expect("a directory is set aside too");
    store.set_aside(TRIAL).expect("and a FIFO");
    assert_eq!(store.confirmed().expect("gone"), None);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn records_of_hostfw_0_1_are_read() {
    let dir = temp();
    fs::create_dir_all(&dir).expect("dir");
    let store = Store::new(&dir);
    fs::write(
        dir.join(CONFIRMED),
        r#"{"sources":{"kind":"configured"},"mode":"enforce"}"#,
    )
    .expect("write");
    assert_eq!(
        store.confirmed().expect("read"),
        Some(Confirmed::Recipe {
            mode: Mode::Enforce,
            cluster: None
        })
    );
    fs::write(
        dir.join(CONFIRMED),
        r#"{"sources":{"kind":"files","files":[{"path":"/a.yaml","text":"t"}]},"mode":"audit"}"#,
    )
    .expect("write");
    let Some(Confirmed::Policy(s)) = store.confirmed().expect("read") else {
        panic!("files are a policy");
    };
    assert_eq!(
        (s.origin, s.mode, s.files.len()),
        (Origin::Applied, Mode::Audit, 1)
    );
    fs::write(
        dir.join(TRIAL),
        r#"{"snapshot":{"sources":{"kind":"files","files":[]},"mode":"enforce"},"deadline_unix_ms":5}"#,
    )
    .expect("write");
    assert_eq!(
        store.trial().expect("read").map(|t| t.deadline_unix_ms),
        Some(5)
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_write_leaves_the_old_record_and_no_temporary_file() {
    let dir = temp();
    let store = Store::new(&dir);
    store.save_confirmed(&snap()).expect("save");
    // The trial record's place is taken by a non-empty directory: the
    // rename fails after the temporary file was written.
    fs::create_dir_all(dir.join(TRIAL).join("x")).expect("dir");
    let err = store
        .save_trial(&TrialRecord::new(snap(), Duration::from_secs(5)))
        .expect_err("cannot rename over a directory");
    assert!(err.to_string().contains("trial.json"), "{err}");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    assert_eq!(
        store.confirmed().expect("read"),
        Some(Confirmed::Policy(snap()))
    );
    let _ = fs::remove_dir_all(&dir);
}
