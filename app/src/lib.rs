//! mite perf lab's pages and the contract they share with the server.
//!
//! - [`model`]: what a run asks for and the states it goes through;
//! - [`figures`]: per-scenario summaries computed from samples;
//! - [`builds`]: which mite builds a run measures, in which order;
//! - [`provenance`]: what a run measured (builds, machine, target, scenario);
//! - [`compare`]: figures over repeats and their verdicts;
//! - [`validity`]: whether a scenario measured what it seems to;
//! - [`matrix`]: a run's figures per build and concurrency (the version matrix);
//! - [`access`]: roles, and what each may do;
//! - [`api`]: the types the pages exchange with the lab, and the server functions;
//! - [`pages`]: the Leptos pages (launch, runs, run detail, compare, ports,
//!   agents, sign-in, activity).

pub mod access;
pub mod api;
pub mod builds;
pub mod charts;
pub mod compare;
pub mod error;
pub mod figures;
pub mod format;
pub mod library;
pub mod matrix;
pub mod model;
pub mod pages;
pub mod profile;
pub mod provenance;
pub mod validity;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

/// The HTML document around the app (rendered on the server).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
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
                    <A href="/ports">"Ports"</A>
                    <A href="/agents">"Agents"</A>
                    <pages::signin::IfMay action=access::Action::Administer>
                        <A href="/activity">"Activity"</A>
                    </pages::signin::IfMay>
                </nav>
                <div class="corner"><pages::signin::CallerBadge/></div>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("/") view=pages::launch::LaunchPage/>
                    <Route path=path!("/runs") view=pages::runs::RunsPage/>
                    <Route path=path!("/runs/:id") view=pages::run::RunPage/>
                    <Route path=path!("/ports") view=pages::ports::PortsPage/>
                    <Route path=path!("/compare") view=pages::compare::ComparePage/>
                    <Route path=path!("/signin") view=pages::signin::SignInPage/>
                    <Route path=path!("/activity") view=pages::activity::ActivityPage/>
                    <Route path=path!("/agents") view=pages::agents::AgentsPage/>
                </Routes>
            </main>
        </Router>
    }
}
