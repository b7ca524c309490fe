//! mite perf lab's pages and the contract they share with the server. The
//! types both sides share and that know no UI are the `domain` crate's.
//!
//! - [`error`]: the contract's one error type, its kind kept end to end;
//! - [`api`]: the types the pages exchange with the lab, and the server functions;
//! - [`pages`]: the Leptos pages (launch, runs, run detail, compare, trends,
//!   ports, agents, sign-in, activity), and [`charts`], the ECharts they draw.
// The pages' view types are deep (as in the server and the frontend).
#![recursion_limit = "256"]

pub mod api;
pub mod charts;
pub mod error;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

/// The Content-Security-Policy of every page, with the nonce of its
/// answer: scripts only from the lab (ECharts, the wasm module and its
/// glue) or carrying the nonce (leptos's hydration and streamed
/// resources); WebAssembly may compile; style attributes are allowed
/// (ECharts' tooltips and the launch form's shape preview set them);
/// images from the lab (flame graphs, never scripted as images) or data
/// URLs (ECharts' "save as image"); no framing, no plugins, no base
/// URL, forms post only to the lab.
pub fn page_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The lab's icon: a small bar chart, as a data URL (the page's policy
/// allows `data:` images).
pub const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%23234'/%3E%3Cpath d='M4 12V8M8 12V4M12 12V7' stroke='%23fff' stroke-width='2'/%3E%3C/svg%3E";

/// The HTML document around the app (rendered on the server). Its answer
/// carries the page's [`page_security_policy`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(policy) = http::HeaderValue::from_str(&page_security_policy(&nonce.to_string())) {
            response.insert_header(http::header::CONTENT_SECURITY_POLICY, policy);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // The lab's icon, inline: no browser asks for /favicon.ico
                // (a 404 in every page's log before).
                <link rel="icon" href=FAVICON/>
                <script src="/assets/echarts.min.js"></script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <leptos_meta::MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    pages::signin::provide_me();
    view! {
        <Stylesheet id="leptos" href="/pkg/mite-perf.css"/>
        <Title text="mite perf lab"/>
        <Router>
            <header class="top">
                <A href="/" attr:class="brand">"mite perf lab"</A>
                <nav>
                    <A href="/">"Launch"</A>
                    <A href="/runs">"Runs"</A>
                    <A href="/compare">"Compare"</A>
                    <A href="/trends">"Trends"</A>
                    <A href="/ports">"Ports"</A>
                    <A href="/agents">"Agents"</A>
                    <pages::signin::IfMay action=domain::access::Action::Administer>
                        <A href="/activity">"Activity"</A>
                    </pages::signin::IfMay>
                </nav>
                <div class="corner"><pages::signin::CallerBadge/></div>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("/") view=pages::launch::LaunchPage/>
                    <Route path=path!("/runs") view=pages::runs::RunsPage/>
                    // Pages whose answer's status says what they found
                    // (404, 503) render whole before answering: streamed,
                    // the status could go out as 200 before the page's
                    // resource had set it (about 1 answer in 6 here).
                    <Route path=path!("/runs/:id") view=pages::run::RunPage ssr=SsrMode::Async/>
                    <Route path=path!("/ports") view=pages::ports::PortsPage/>
                    <Route path=path!("/compare") view=pages::compare::ComparePage ssr=SsrMode::Async/>
                    <Route path=path!("/signin") view=pages::signin::SignInPage/>
                    <Route path=path!("/activity") view=pages::activity::ActivityPage ssr=SsrMode::Async/>
                    <Route path=path!("/agents") view=pages::agents::AgentsPage ssr=SsrMode::Async/>
                    <Route path=path!("/trends") view=pages::trends::TrendsPage ssr=SsrMode::Async/>
                    <Route path=path!("/trends/:id") view=pages::trends::SeriesPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
