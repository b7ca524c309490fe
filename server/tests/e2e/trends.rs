//! END-TO-END (seconds): the trends pages in headless Chromium, on a
//! seeded history of ten mite releases (see `common::seed::release_history`)
//! served by a web front: /trends lists the series with their latest
//! change, and a series' page draws its chart, its change and its points;
//! a member acknowledges the change and excludes a point there.

use std::time::Duration;

use mite_perf::store::Store;

use crate::common::{Browser, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_browser_trends_list_series_with_their_changes_and_draw_one() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("trends-web");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    crate::common::seed::release_history(&store).await;
    let server = Server::front_for("trends-web", db_url).await;
    let browser = Browser::start().await;

    browser.goto(&server.url("/trends")).await;
    // The console check can fail: an error the page says is read, once.
    browser
        .eval("console.error('an error planted by the test'); return true;")
        .await;
    let said = browser.console_errors().await;
    assert!(
        said.iter()
            .any(|e| e.contains("an error planted by the test")),
        "{said:?}"
    );
    assert!(browser.console_errors().await.is_empty());
    // The runner's requests per CPU-second on the EPYC machine, with its
    // step at 2.8.0, confirmed.
    let row = r#"const row = [...document.querySelectorAll('tr[data-series]')].find(r =>
            r.textContent.includes('requests per runner CPU-s') && r.textContent.includes('EPYC'));"#;
    browser
        .wait_for(
            "the series with its change",
            &format!(
                "{row} return !!row && !!row.querySelector('[data-change=\"2.8.0\"][data-state=\"confirmed\"]') && !!row.querySelector('svg.sparkline polyline');"
            ),
            Duration::from_secs(30),
        )
        .await;
    // The other machine's run is a series of its own, with no change.
    let intel = browser
        .eval(
            r#"return [...document.querySelectorAll('tr[data-series]')].filter(r =>
                 r.textContent.includes('Intel') && !r.querySelector('[data-change]')).length;"#,
        )
        .await;
    assert!(intel.as_u64().is_some_and(|n| n > 0), "{intel}");
    let href = browser
        .eval(&format!(
            "{row} return row.querySelector('a').getAttribute('href');"
        ))
        .await;
    let href = href.as_str().expect("a link to the series").to_string();
    assert!(href.starts_with("/trends/"), "{href}");

    browser.goto(&server.url(&href)).await;
    browser
        .wait_for(
            "the series' chart",
            "const el = document.getElementById('series-chart'); return !!el && el.dataset.rendered === '1';",
            Duration::from_secs(30),
        )
        .await;
    let shown = browser
        .eval(
            r#"const rows = [...document.querySelectorAll('table.points tr[data-build]')];
               const step = rows.find(r => r.dataset.build === '2.8.0');
               const compare = document.querySelector('ul.changes a[href^="/compare?runs="]');
               return [rows.length, step ? step.textContent.includes('step') : false, !!compare];"#,
        )
        .await;
    assert_eq!(shown, serde_json::json!([10, true, true]));

    // A member (the loopback lab's local user) acknowledges the change and
    // excludes a point: both are shown, and said in the activity log.
    browser.wait_hydrated().await;
    browser
        .eval("document.querySelector('button[data-acknowledge=\"2.8.0\"]').click(); return true;")
        .await;
    browser
        .wait_for(
            "the change acknowledged",
            "return !!document.querySelector('ul.changes [data-acknowledged]');",
            Duration::from_secs(20),
        )
        .await;
    browser
        .eval("document.querySelector('button[data-exclude=\"2.4.0\"]').click(); return true;")
        .await;
    browser
        .wait_for(
            "the point excluded",
            "const row = document.querySelector('table.points tr[data-build=\"2.4.0\"]'); return !!row && row.textContent.includes('excluded by');",
            Duration::from_secs(20),
        )
        .await;
    let actions: Vec<String> = store
        .activity(None, 10)
        .await
        .expect("activity")
        .into_iter()
        .map(|a| format!("{} {}", a.action, a.subject))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("acknowledge trend change 2.8.0 of series")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("exclude trend point 2.4.0 of series")),
        "{actions:?}"
    );
    // The list's news is gone with the acknowledgement.
    browser.goto(&server.url("/trends")).await;
    browser
        .wait_for(
            "the series without news",
            &format!("{row} return !!row && !row.querySelector('[data-change]');"),
            Duration::from_secs(30),
        )
        .await;
    // The release history's form: a range without a release is said; a
    // real one (PyPI's index) queues a run per release, linked.
    browser.wait_hydrated().await;
    let submit = |range: &str| {
        format!(
            "const form = document.querySelector('form[data-backfill]'); \
             form.querySelector('input[name=range]').value = '{range}'; \
             form.querySelector('button[type=submit]').click(); return true;"
        )
    };
    browser.eval(&submit("9.0.0..9.9.9")).await;
    browser
        .wait_for(
            "no release in the range, said",
            "const p = document.querySelector('section p.error'); return !!p && p.textContent.includes('no mite release in 9.0.0..9.9.9');",
            Duration::from_secs(30),
        )
        .await;
    browser.eval(&submit("2.10.0..2.11.0")).await;
    browser
        .wait_for(
            "two releases queued",
            "const p = document.querySelector('[data-backfilled=\"2\"]'); return !!p && p.textContent.includes('2.10.0') && p.textContent.includes('2.11.0');",
            Duration::from_secs(30),
        )
        .await;
    let queued: Vec<String> = store
        .queued_runs()
        .await
        .expect("queued runs")
        .iter()
        .map(|r| format!("{} {:?}", r.label, r.params.mite))
        .collect();
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert!(
        queued[0].starts_with("releases") && queued[0].contains("2.10.0"),
        "{queued:?}"
    );

    // A series (or run) that does not exist is a 404 page, said, every
    // time: streamed, about 1 answer in 6 went out as 200 before the
    // page's resource had set its status.
    for _ in 0..20 {
        let (status, body) = server
            .get("/trends/0123456789abcdef")
            .await
            .expect("an answer");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("no series 0123456789abcdef"), "{body}");
        let (status, body) = server.get("/runs/999").await.expect("an answer");
        assert_eq!(status, 404, "{body}");
    }
    // The browser said no error (a script exception, a CSP violation,
    // a resource refused) on the last page either.
    browser.assert_console_clean().await;
    drop(browser);
    let _ = std::fs::remove_dir_all(dir);
}

/// `mite-perf trend` with the lab's database.
fn trend(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::common::BIN)
        .arg("trend")
        .args(args)
        .env("MITE_PERF_DATABASE_URL", db_url)
        .env_remove(mite_perf::mite_env::pypi::INDEX_ENV)
        .output()
        .expect("mite-perf trend")
}

/// A fresh lab's release history in one command, from PyPI's real index:
/// one queued run per release of the range, oldest first, each of that
/// release alone; all or none when the queue cannot hold them; a range
/// that is not one, or holds no release, refused (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_range_of_releases_is_queued_in_one_command() {
    let _turn = crate::common::share_the_machine().await;
    let dir = crate::common::temp_dir("backfill");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");

    let out = trend(
        &db_url,
        &[
            "--backfill",
            "2.9.0..2.11.0",
            "--concurrencies",
            "10",
            "--repeat",
            "2",
        ],
    );
    let said = crate::common::text(&out);
    assert!(out.status.success(), "{said}");
    let queued = store.queued_runs().await.expect("queued runs");
    let versions: Vec<String> = queued
        .iter()
        .map(|r| r.params.mite.iter().map(ToString::to_string).collect())
        .collect();
    // 2.9.1, 2.9.2, 2.10.0 and 2.11.0 are on PyPI: in release order.
    assert_eq!(
        versions,
        vec!["2.9.1", "2.9.2", "2.10.0", "2.11.0"],
        "{said}"
    );
    assert!(queued.iter().all(|r| r.label == "releases"
        && r.params.concurrencies == vec![10]
        && r.params.repeats == 2));
    let logged = store.activity(None, 10).await.expect("activity");
    assert!(
        logged
            .iter()
            .any(|a| a.action == "backfill" && a.subject == "4 releases of 2.9.0..2.11.0"),
        "{logged:?}"
    );

    // The queue holds 100: with 97 waiting, four more do not fit, and none is queued.
    for _ in 0..93 {
        store
            .create_run(
                &mite_perf::model::RunParams::default(),
                mite_perf::model::RunStatus::Queued,
            )
            .await
            .expect("a queued run");
    }
    let out = trend(&db_url, &["--backfill", "2.9.0..2.11.0"]);
    let said = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("room for 3 more runs"), "{said}");
    assert_eq!(store.queued_count().await.expect("count"), 97);

    for (range, says) in [
        ("2.11.0..2.9.0", "runs backwards"),
        ("latest", "is not a range of releases"),
        ("9.0.0..9.9.9", "no mite release in 9.0.0..9.9.9"),
    ] {
        let out = trend(&db_url, &["--backfill", range]);
        let said = crate::common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{range}: {said}");
        assert!(said.contains(says), "{range}: {said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
