//! The page `rnnc explore` writes, in a real browser: headless Chromium (Debian's
//! `chromium`, which `scripts/test.sh` installs) loads the report of
//! `models/lstm_seed_equations.rnn` at -O2 with a node selected, and the DOM it
//! builds is checked: one section per pass, the diff of fuse-gates adding the
//! stacked weight, the selected node's source line marked and its type shown. A
//! screenshot is saved to `target/explore/report.png`. Without Chromium the test
//! says so and passes, except under CI (`CI` set), where it fails.

mod common;

use rnnc::{Model, Opt, Params};
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn the_report_works_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium missing under CI; scripts/test.sh installs it"
        );
        eprintln!("skipped: no Chromium (scripts/test.sh installs Debian's `chromium`)");
        return;
    };
    let path = common::root().join("models/lstm_seed_equations.rnn");
    let m = Model::load(
        &path,
        &Params::new().set("input_size", 3).set("hidden_size", 4),
    )
    .unwrap();
    let source = std::fs::read_to_string(&path).unwrap();
    let report = m.explore(&Opt::Level(2), Some(source.clone())).unwrap();
    // The lowered graph's first sigmoid, and the source line it came from.
    let lowered = &report.steps[0];
    let (value, line) = lowered
        .diff
        .iter()
        .zip(&lowered.source_lines)
        .find_map(|((_, ir), l)| {
            let v = ir.trim_start().strip_prefix('%')?.split(' ').next()?;
            (ir.contains("= sigmoid")).then_some((v.to_string(), (*l)?))
        })
        .expect("a sigmoid with a source line");
    let dir = common::root().join("target/explore");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, rnnc::explore_html::html(&report)).unwrap();
    let url = format!("file://{}#select=0:{value}", page.display());
    let run = |extra: &[&str]| {
        let o = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("running Chromium");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    assert_eq!(
        dom.matches("<section class=\"pass\"").count(),
        report.steps.len(),
        "one section per pass"
    );
    let fuse = &dom[dom
        .find("data-pass=\"fuse-gates\"")
        .expect("a fuse-gates section")..];
    let fuse = &fuse[..fuse.find("</section>").unwrap()];
    assert!(
        fuse.split("<span class=\"add\"").skip(1).any(|l| l
            .split("</span>")
            .next()
            .unwrap()
            .contains("concat axis=0")),
        "fuse-gates adds the stacked weight"
    );
    assert!(
        dom.contains(&format!("<span id=\"line-{line}\" class=\"selected\">")),
        "the selected node's source line {line} is marked"
    );
    assert!(
        dom.contains(&format!(
            "<div id=\"info\" style=\"display: block;\">%{value} = sigmoid"
        )),
        "the selected node's type is shown"
    );
    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    run(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,2600",
    ]);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot"
    );
}
