//! Rendering a 50 KB summary (headings, lists, action-item tables, links, code, and some raw
//! HTML the sanitiser has to remove) from Markdown to sanitised HTML, as the job page does.
//! Run: `cargo bench --bench markdown` (`MARKDOWN_BENCH_KB=200` for another size).
//!
//! Prints the median, fastest and slowest of many renders of the same text.

use std::hint::black_box;
use std::time::{Duration, Instant};

use focusflow::markdown::render_markdown;

const SECTION: &str = r#"## Meeting {n}: quarterly planning

### Overview
The team reviewed the **release plan**, the _support backlog_ and the hiring pipeline. The release
stays on track for the end of the month; two risks were raised about the `migration` step, see
[the runbook](https://wiki.example.com/runbooks/migration?id={n}) for details.

### Decisions
1. Ship the new importer behind a flag in the next release.
2. Move the support rotation to a weekly schedule, starting ~~Monday~~ Tuesday.
3. Keep the old export format for one more release.

### Action items
| Owner | Task | Due |
|:---|:---:|---:|
| Ana | Draft the migration runbook | 2025-10-03 |
| Ben | Review the importer's error messages | 2025-10-01 |
| Chloe | Schedule interviews for the backend role | 2025-10-06 |

- [x] Agree on the release date
- [ ] Confirm the maintenance window with customers

> Ben: "If the migration takes longer than an hour we roll back."

### Risks
- The migration may take longer than the maintenance window on large installations.
- Two customers depend on the old export format <img src="https://tracker.example.com/{n}.png">.
- <script>alert({n})</script>A note the model copied from the transcript.

```
SELECT count(*) FROM jobs WHERE status = 'queued';
```

### Next steps
Ana shares the runbook on Friday; the team meets again next Tuesday at 10:00.

"#;

fn summary(kilobytes: usize) -> String {
    let mut text = String::from("# Executive summary\n\n");
    let mut n = 0;
    while text.len() < kilobytes * 1024 {
        text.push_str(&SECTION.replace("{n}", &n.to_string()));
        n += 1;
    }
    text.truncate(text[..kilobytes * 1024].rfind("\n\n").unwrap_or(text.len()));
    text
}

fn main() {
    let kilobytes: usize = std::env::var("MARKDOWN_BENCH_KB")
        .ok()
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(50);
    let markdown = summary(kilobytes);
    let html = render_markdown(&markdown);
    assert!(html.contains("<table>") && !html.contains("<script") && !html.contains("<img"));

    // Warm up (allocator, the sanitiser's lazily built rules), then time single renders.
    for _ in 0..20 {
        black_box(render_markdown(black_box(&markdown)));
    }
    let budget = Instant::now();
    let mut samples: Vec<Duration> = Vec::new();
    while samples.len() < 200 || (budget.elapsed() < Duration::from_secs(3) && samples.len() < 5000)
    {
        let started = Instant::now();
        black_box(render_markdown(black_box(&markdown)));
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "render {} bytes of Markdown ({} bytes of HTML): median {:.1} µs, fastest {:.1} µs, \
         slowest {:.1} µs over {} renders ({:.0} MB/s at the median)",
        markdown.len(),
        html.len(),
        median.as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6,
        samples.len(),
        markdown.len() as f64 / median.as_secs_f64() / 1e6,
    );
}
