//! Markdown produced by the model (summaries, titles) rendered to HTML that is
//! safe to put into a page.
//!
//! Model output is untrusted: the model summarises text that anyone can write,
//! so a prompt injection can make it emit script tags, `javascript:` links or
//! tracking images. Rendering is therefore two steps: pulldown-cmark turns
//! markdown into HTML (raw HTML in the input passes through it), then ammonia
//! keeps only an allow-list of tags, attributes and URL schemes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Alignment, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Tags that survive sanitising. Everything else is removed but its text kept,
/// except [`DROPPED_WITH_CONTENT`].
const ALLOWED_TAGS: &[&str] = &[
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Tags removed together with everything inside them: their content is code,
/// styles or embedded documents, never text meant for the reader.
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "noscript",
    "noembed",
    "noframes",
    "template",
    "svg",
    "math",
    "textarea",
    "select",
    "title",
    "xmp",
    "plaintext",
];

/// `rel` put on every link: no `window.opener` access, no referrer leaking the
/// page address, and no endorsement of a link the model made up.
const LINK_REL: &str = "noopener noreferrer nofollow";

/// Built once: the builder holds several hash sets and is used on every page.
static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(ALLOWED_TAGS.iter().copied().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(HashMap::from([
            ("a", HashSet::from(["href", "title"])),
            ("ol", HashSet::from(["start"])),
            ("th", HashSet::from(["align"])),
            ("td", HashSet::from(["align"])),
        ]))
        .generic_attributes(HashSet::new())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        // A relative link would point into this app (e.g. at an action URL).
        .url_relative(UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        .strip_comments(true)
        .attribute_filter(filter_attribute);
    builder
});

/// Narrows the few non-URL attributes we keep to values that mean what we
/// expect; ammonia already checks `href` schemes.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        ("th" | "td", "align") => {
            matches!(value, "left" | "center" | "right").then_some(Cow::Borrowed(value))
        }
        ("ol", "start") => {
            let ok =
                !value.is_empty() && value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit());
            ok.then_some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

fn parser_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Renders model-written markdown to sanitised HTML, ready to insert into a
/// template without further escaping.
///
/// Images are dropped (an external image is a beacon that tells its host who
/// opened the summary) and their alt text is kept as plain text. Task-list
/// items get a ☐/☑ character instead of a form checkbox.
pub fn render_markdown(markdown: &str) -> String {
    let mut rewriter = Rewriter::default();
    let events =
        Parser::new_ext(markdown, parser_options()).filter_map(|event| rewriter.rewrite(event));
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SANITIZER.clean(&html).to_string()
}

/// A summary as the job page shows it, below the card's own "Summary" heading (an `h2`): the
/// model's headings are moved down so its highest one is an `h3` (a summary that starts with
/// `# Meeting summary` would otherwise outrank the page's own title), and a line break within
/// a paragraph stays a line break ("Topic: …", "Participants: …", "Duration: …" are lines of
/// their own, which Markdown would run together).
pub fn render_summary(markdown: &str) -> String {
    use pulldown_cmark::HeadingLevel;
    let top = Parser::new_ext(markdown, parser_options())
        .filter_map(|event| match event {
            Event::Start(Tag::Heading { level, .. }) => Some(level as usize),
            _ => None,
        })
        .min();
    let shift = top.map_or(0, |top| 3usize.saturating_sub(top));
    let demote = |level: HeadingLevel| {
        HeadingLevel::try_from((level as usize + shift).min(6)).unwrap_or(HeadingLevel::H6)
    };
    let mut rewriter = Rewriter::default();
    let events = Parser::new_ext(markdown, parser_options())
        .map(|event| match event {
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => Event::Start(Tag::Heading {
                level: demote(level),
                id,
                classes,
                attrs,
            }),
            Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(demote(level))),
            Event::SoftBreak => Event::HardBreak,
            other => other,
        })
        .filter_map(|event| rewriter.rewrite(event));
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SANITIZER.clean(&html).to_string()
}

/// Markdown as plain text on one line, for a search result's passage: heading marks, list
/// bullets, emphasis, code ticks and table rules go; lines are joined with " · ". Other
/// characters (the search's match marks among them) stay as they are.
pub fn plain_text(markdown: &str) -> String {
    static MARKS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"^\s*(?:#{1,6}\s+|>\s?|[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,3}[.)]\s+)")
            .expect("a valid pattern")
    });
    static INLINE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\*\*|__|`").expect("a valid pattern"));
    let mut lines = Vec::new();
    for line in markdown.lines() {
        let line = MARKS.replace(line, "");
        let line = INLINE.replace_all(&line, "");
        // A table: its rule row goes, its cells are separated by commas.
        let trimmed = line.trim().trim_matches('|').trim();
        if trimmed.is_empty() || trimmed.chars().all(|c| matches!(c, '-' | ':' | '|' | ' ')) {
            continue;
        }
        let cells: Vec<&str> = trimmed.split('|').map(str::trim).collect();
        lines.push(cells.join(", "));
    }
    lines.join(" · ")
}

/// Deepest element nesting passed on to the sanitiser. html5ever's tree
/// builder is quadratic in nesting depth (20 000 nested list items took tens
/// of seconds), and no real summary nests this deep; deeper elements are
/// flattened to their text.
const MAX_NESTING: usize = 32;

/// Adjusts pulldown-cmark's events before they become HTML.
#[derive(Default)]
struct Rewriter {
    depth: usize,
    tables: TableCells,
}

/// Tracks table position so cells can carry `align` instead of the inline
/// `style` pulldown-cmark writes (inline styles are not allowed through, and a
/// strict Content-Security-Policy would block them anyway).
#[derive(Default)]
struct TableCells {
    alignments: Vec<Alignment>,
    in_head: bool,
    column: usize,
}

impl TableCells {
    fn cell_start(&self) -> String {
        let tag = if self.in_head { "th" } else { "td" };
        let align = match self.alignments.get(self.column) {
            Some(Alignment::Left) => " align=\"left\"",
            Some(Alignment::Center) => " align=\"center\"",
            Some(Alignment::Right) => " align=\"right\"",
            Some(Alignment::None) | None => "",
        };
        format!("<{tag}{align}>")
    }

    fn cell_end(&mut self) -> &'static str {
        self.column += 1;
        if self.in_head { "</th>" } else { "</td>" }
    }
}

impl Rewriter {
    fn rewrite<'a>(&mut self, event: Event<'a>) -> Option<Event<'a>> {
        // Events are properly nested, so a depth counter pairs every skipped
        // start with its end.
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return None;
                }
            }
            Event::End(_) => {
                let too_deep = self.depth > MAX_NESTING;
                self.depth = self.depth.saturating_sub(1);
                if too_deep {
                    return None;
                }
            }
            _ => {}
        }
        let tables = &mut self.tables;
        match event {
            // Without the image tags, the alt text events render as ordinary text.
            Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
            Event::TaskListMarker(done) => Some(Event::Text(CowStr::Borrowed(if done {
                "☑ "
            } else {
                "☐ "
            }))),
            Event::Start(Tag::Table(alignments)) => {
                tables.alignments = alignments.clone();
                tables.in_head = false;
                Some(Event::Start(Tag::Table(alignments)))
            }
            Event::Start(Tag::TableHead) => {
                tables.in_head = true;
                tables.column = 0;
                Some(Event::Start(Tag::TableHead))
            }
            Event::End(TagEnd::TableHead) => {
                tables.in_head = false;
                Some(Event::End(TagEnd::TableHead))
            }
            Event::Start(Tag::TableRow) => {
                tables.column = 0;
                Some(Event::Start(Tag::TableRow))
            }
            Event::Start(Tag::TableCell) => Some(Event::Html(tables.cell_start().into())),
            Event::End(TagEnd::TableCell) => Some(Event::Html(CowStr::Borrowed(tables.cell_end()))),
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_sits_below_the_pages_headings_and_keeps_its_lines() {
        let html = render_summary(
            "# Meeting summary\n\nTopic: Budget\nParticipants: Ana, Ben\nDuration: 30 min\n\n## Key decisions\n- Ship\n",
        );
        assert!(html.contains("<h3>Meeting summary</h3>"), "{html}");
        assert!(html.contains("<h4>Key decisions</h4>"), "{html}");
        assert!(
            html.contains("Topic: Budget<br>\nParticipants: Ana, Ben<br>\nDuration: 30 min"),
            "{html}"
        );
        // A summary that starts at ## moves down by one; one at ### stays.
        assert!(render_summary("## A\n### B").contains("<h3>A</h3>\n<h4>B</h4>"));
        assert!(render_summary("### A").contains("<h3>A</h3>"));
        assert!(render_summary("# A\n##### B").contains("<h6>B</h6>"));
    }

    #[test]
    fn search_passages_are_plain_text() {
        assert_eq!(
            plain_text("## Key Decisions\n- Ship the **beta**\n1. Review `code`"),
            "Key Decisions · Ship the beta · Review code"
        );
        assert_eq!(
            plain_text("| Action | Owner |\n|---|---|\n| Ship | Ben |"),
            "Action, Owner · Ship, Ben"
        );
        assert_eq!(plain_text("> quoted\n- [x] done"), "quoted · done");
    }

    /// The text inside every `<...>` of the output, i.e. the markup without
    /// the escaped text between tags.
    fn markup(html: &str) -> Vec<String> {
        let mut tags = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let after = &rest[start..];
            let end = after.find('>').map_or(after.len(), |i| i + 1);
            tags.push(after[..end].to_ascii_lowercase());
            rest = &after[end..];
        }
        tags
    }

    fn assert_safe(input: &str, html: &str) {
        let lower = html.to_ascii_lowercase();
        for needle in [
            "<script", "<iframe", "<img", "<svg", "<math", "<object", "<embed", "<style", "<form",
            "<input", "<base", "<meta", "<link", "<frame", "<details",
        ] {
            assert!(
                !lower.contains(needle),
                "{needle} survived\ninput: {input}\noutput: {html}"
            );
        }
        for tag in markup(html) {
            for needle in [
                "javascript:",
                "vbscript:",
                "data:",
                "style=",
                "srcdoc",
                "src=",
            ] {
                assert!(
                    !tag.contains(needle),
                    "{needle} in tag {tag}\ninput: {input}\noutput: {html}"
                );
            }
            // No event handler: no attribute name starting with "on".
            let attrs = tag.trim_start_matches('<').trim_start_matches('/');
            for word in attrs.split(|c: char| c.is_ascii_whitespace() || c == '/') {
                assert!(
                    !(word.starts_with("on") && word.contains('=')),
                    "event handler {word} in tag {tag}\ninput: {input}\noutput: {html}"
                );
            }
            if tag.starts_with("<a ") || tag == "<a>" {
                assert!(tag.contains(LINK_REL), "link without rel: {tag}");
            }
        }
    }

    #[test]
    fn renders_headings_lists_and_emphasis() {
        let html = render_markdown(
            "# Summary\n\n## Decisions\n\n- **Ship** it\n- *later*: ~~maybe~~\n\n1. one\n2. two\n\n> quoted\n\n---\n\nline  \nbreak\n",
        );
        assert!(html.contains("<h1>Summary</h1>"), "{html}");
        assert!(html.contains("<h2>Decisions</h2>"), "{html}");
        assert!(html.contains("<ul>"), "{html}");
        assert!(html.contains("<li><strong>Ship</strong> it</li>"), "{html}");
        assert!(html.contains("<em>later</em>"), "{html}");
        assert!(html.contains("<del>maybe</del>"), "{html}");
        assert!(html.contains("<ol>"), "{html}");
        assert!(html.contains("<blockquote>"), "{html}");
        assert!(html.contains("<hr>"), "{html}");
        assert!(html.contains("<br>"), "{html}");
    }

    #[test]
    fn ordered_list_start_is_kept() {
        let html = render_markdown("3. three\n4. four\n");
        assert!(html.contains("<ol start=\"3\">"), "{html}");
    }

    #[test]
    fn renders_gfm_table_with_alignment() {
        let html = render_markdown(
            "| Owner | Task | Due |\n|:--|:-:|--:|\n| Ana | Draft | Fri |\n| Bo | Review<br>and sign | Mon |\n",
        );
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<thead>"), "{html}");
        assert!(html.contains("<tbody>"), "{html}");
        assert!(html.contains("<th align=\"left\">Owner</th>"), "{html}");
        assert!(html.contains("<th align=\"center\">Task</th>"), "{html}");
        assert!(html.contains("<th align=\"right\">Due</th>"), "{html}");
        assert!(html.contains("<td align=\"left\">Ana</td>"), "{html}");
        assert!(html.contains("<td align=\"right\">Mon</td>"), "{html}");
        assert!(html.contains("Review<br>and sign"), "{html}");
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn table_without_alignment_has_plain_cells() {
        let html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert!(html.contains("<th>a</th><th>b</th>"), "{html}");
        assert!(html.contains("<td>1</td><td>2</td>"), "{html}");
    }

    #[test]
    fn task_list_uses_characters_not_inputs() {
        let html = render_markdown("- [x] done\n- [ ] open\n");
        assert!(html.contains("☑ done"), "{html}");
        assert!(html.contains("☐ open"), "{html}");
        assert!(!html.contains("<input"), "{html}");
    }

    #[test]
    fn code_is_escaped_not_executed() {
        let html = render_markdown("```html\n<script>alert(1)</script>\n```\n\nand `<b>x</b>`\n");
        assert!(html.contains("<pre><code>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;b&gt;x&lt;/b&gt;</code>"), "{html}");
        assert_safe("code", &html);
    }

    #[test]
    fn https_link_keeps_href_and_gets_rel() {
        let html = render_markdown("See [the notes](https://example.com/notes?a=1&b=2 \"Notes\").");
        assert!(
            html.contains("href=\"https://example.com/notes?a=1&amp;b=2\""),
            "{html}"
        );
        assert!(html.contains(&format!("rel=\"{LINK_REL}\"")), "{html}");
        assert!(html.contains("title=\"Notes\""), "{html}");
        assert!(html.contains(">the notes</a>"), "{html}");
    }

    #[test]
    fn mailto_and_http_links_are_kept() {
        let html = render_markdown("[mail](mailto:a@example.com) and <http://example.org/x>");
        assert!(html.contains("href=\"mailto:a@example.com\""), "{html}");
        assert!(html.contains("href=\"http://example.org/x\""), "{html}");
    }

    #[test]
    fn relative_links_lose_their_href() {
        for input in [
            "[x](/jobs/1/delete)",
            "[x](../admin)",
            "[x](//evil.example/)",
        ] {
            let html = render_markdown(input);
            assert!(!html.contains("href"), "{input} -> {html}");
            assert!(html.contains(">x</a>"), "{input} -> {html}");
        }
    }

    #[test]
    fn images_are_dropped_but_alt_text_kept() {
        let html = render_markdown(
            "Logo: ![Company *logo*](https://tracker.example/pixel.gif?u=1 \"t\") end\n\n<img src=\"https://tracker.example/p.gif\" alt=\"raw\">",
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("tracker.example"), "{html}");
        assert!(html.contains("Logo: Company <em>logo</em> end"), "{html}");
    }

    #[test]
    fn linked_image_keeps_link_and_alt() {
        let html = render_markdown("[![badge](https://img.example/b.svg)](https://example.com/)");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("href=\"https://example.com/\""), "{html}");
        assert!(html.contains(">badge</a>"), "{html}");
    }

    #[test]
    fn xss_payloads_are_neutralised() {
        let payloads = [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
            "<img src=x onerror=alert(1)>",
            "<IMG SRC=\"javascript:alert(1)\">",
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x]( javascript:alert(1) )",
            "[x](<javascript:alert(1)>)",
            "[x](&#106;avascript:alert(1))",
            "[x](javascript&#58;alert(1))",
            "[x](vbscript:msgbox(1))",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "[x][r]\n\n[r]: javascript:alert(1)",
            "![x](javascript:alert(1))",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<iframe srcdoc=\"<script>alert(1)</script>\">",
            "<a href=\"javascript&colon;alert(1)\">x</a>",
            "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
            "<a href=\"java\tscript:alert(1)\">x</a>",
            "<a href=\" javascript:alert(1)\">x</a>",
            "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
            "<svg onload=alert(1)>",
            "<svg><script>alert(1)</script></svg>",
            "<svg><style><img src=x onerror=alert(1)></style></svg>",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "<p style=\"color:red\" onmouseover=\"alert(1)\">x</p>",
            "<a onclick=\"alert(1)\" href=\"https://example.com\">x</a>",
            "<a href=\"https://example.com\" rel=\"opener\" target=\"_blank\">x</a>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
            "<math href=\"javascript:alert(1)\">x</math>",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
            "<details open ontoggle=alert(1)>",
            "<body onload=alert(1)>",
            "<form action=\"javascript:alert(1)\"><input type=submit></form>",
            "<object data=\"data:text/html,x\"></object>",
            "<embed src=\"javascript:alert(1)\">",
            "<base href=\"javascript:/\">",
            "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
            "<link rel=stylesheet href=\"https://evil.example/x.css\">",
            "<style>body{background:url(javascript:alert(1))}</style>",
            "<javascript:alert(1)>",
            "<vbscript:msgbox(1)>",
            "<data:text/html,hi>",
            "<!--<script>alert(1)</script>-->",
            "<![CDATA[<script>alert(1)</script>]]>",
            "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
            "- [ ] <script>alert(1)</script>",
            "<a href=\"https://example.com\"\nonmouseover=alert(1)>x</a>",
            "<h1 id=\"x\" class=\"y\" onclick=\"alert(1)\">t</h1>",
            "<td style=\"x\" align=\"javascript:alert(1)\">t</td>",
            "<ol start=\"1 onclick=alert(1)\"><li>x</li></ol>",
        ];
        for input in payloads {
            let html = render_markdown(input);
            assert_safe(input, &html);
            // Except in an autolink's visible text, no scheme survives at all.
            if !input.starts_with("<javascript:") && !input.starts_with("<vbscript:") {
                assert!(
                    !html.to_ascii_lowercase().contains("javascript:"),
                    "{input} -> {html}"
                );
            }
        }
    }

    #[test]
    fn autolink_with_bad_scheme_becomes_text_only() {
        let html = render_markdown("<javascript:alert(1)>");
        assert!(!html.contains("href"), "{html}");
        assert_safe("autolink", &html);
    }

    #[test]
    fn raw_harmless_html_keeps_its_text() {
        let html = render_markdown("<div><span>kept text</span></div>");
        assert!(html.contains("kept text"), "{html}");
        assert!(!html.contains("<div"), "{html}");
    }

    #[test]
    fn renders_a_large_document() {
        let section = "## Section\n\nSome *text* with a [link](https://example.com/) and `code`.\n\n\
                       | a | b |\n|---|---|\n| 1 | 2 |\n\n- item\n- item\n\n```\nlet x = 1;\n```\n\n";
        let count = 50 * 1024 / section.len() + 1;
        let doc = section.repeat(count);
        assert!(doc.len() >= 50 * 1024);
        let html = render_markdown(&doc);
        assert_eq!(html.matches("<table>").count(), count);
        assert_eq!(html.matches("<h2>").count(), count);
        assert_eq!(html.matches(LINK_REL).count(), count);
    }

    #[test]
    fn deeply_nested_input_does_not_crash() {
        for doc in [
            "> ".repeat(5_000) + "deep",
            "- ".repeat(5_000) + "deep",
            "<div>".repeat(5_000) + "deep",
            "*".repeat(10_000) + "deep" + &"*".repeat(10_000),
            "[".repeat(10_000) + "deep",
        ] {
            let html = render_markdown(&doc);
            assert!(html.contains("deep"), "{}", &html[..html.len().min(200)]);
        }
    }

    #[test]
    fn nesting_is_capped() {
        let html = render_markdown(&("> - ".repeat(20_000) + "deep"));
        assert!(html.contains("deep"));
        let opened = html.matches("<blockquote>").count() + html.matches("<li>").count();
        assert!(opened <= MAX_NESTING, "{opened} nested elements");
        assert_eq!(
            html.matches("<blockquote>").count(),
            html.matches("</blockquote>").count()
        );
        assert_eq!(html.matches("<ul>").count(), html.matches("</ul>").count());
    }

    #[test]
    fn moderately_nested_lists_render_fully() {
        let mut doc = String::new();
        for level in 0..8 {
            doc.push_str(&"  ".repeat(level));
            doc.push_str(&format!("- level {level}\n"));
        }
        let html = render_markdown(&doc);
        assert_eq!(html.matches("<ul>").count(), 8, "{html}");
        assert!(html.contains("level 7"), "{html}");
    }

    #[test]
    fn empty_and_plain_text() {
        assert_eq!(render_markdown(""), "");
        assert_eq!(render_markdown("a < b & c"), "<p>a &lt; b &amp; c</p>\n");
    }
}
