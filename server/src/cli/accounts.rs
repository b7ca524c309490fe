//! `mite-perf user …` and `mite-perf token …`: accounts and API tokens of a
//! shared lab, on the same database `serve` uses. Every change is written
//! to the activity log as the command line's.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use domain::access::{check_name, Role};
use domain::format::utc;
use mite_perf::access::accounts::hash_password;
use mite_perf::access::tokens::{new_token, token_hash};
use mite_perf::store::{AccountChange, NewToken, Store, StoreError};

use super::{connect, DbArgs, EXIT_USAGE};

/// The shortest password accepted.
const MIN_PASSWORD: usize = 8;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user who signs in with a password (read from the terminal, or
    /// the first line of --password-file).
    Add {
        name: String,
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List users and their roles.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set a user's password (their open sessions end).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set a user's role: viewer, runner or admin.
    Role {
        name: String,
        #[arg()]
        role: Role,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove a user (their runs keep their name).
    Remove {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make an API token for a CI job or a script and print it, once. Send
    /// it as `Authorization: Bearer TOKEN`.
    Create {
        name: String,
        #[arg(long)]
        role: Role,
        /// The user the token belongs to: it acts with at most their role
        /// and dies with their account (without: the lab's operator's).
        #[arg(long)]
        owner: Option<String>,
        /// How long it works (e.g. 90d, 12h; without: until revoked).
        #[arg(long, value_parser = domain::model::parse_duration)]
        expires: Option<std::time::Duration>,
        /// It may also upload builds (mite wheels, `POST /api/wheels`), as a
        /// CI job's `mite-perf ci check` and `bisect` do: a right no role
        /// brings, since a wheel is code every agent will run. Runner or
        /// admin tokens only.
        #[arg(long)]
        may_upload: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List tokens (never the tokens themselves): roles, owners, expiry and
    /// last use; all of them, or one user's.
    List {
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke a token: requests bearing it are refused from now on.
    Revoke {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Args, Debug)]
pub struct PasswordArgs {
    /// Read the password from the first line of this file instead of the terminal.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

/// Who the activity log says made a change from the command line.
fn actor() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "unknown".to_string(), |u| u.name);
    format!("{user} (command line)")
}

pub(crate) async fn log(store: &Store, action: &str, subject: &str) -> anyhow::Result<()> {
    store
        .record_activity(&actor(), action, subject, "command line")
        .await
        .context("cannot write the activity log")
}

/// A usage error: said in one sentence, exit 2.
fn usage(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    to_stderr!("error: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

fn read_password(args: &PasswordArgs, name: &str) -> anyhow::Result<String> {
    let password = match &args.password_file {
        Some(path) => first_line(path)?,
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password(format!("password for {name}: "))
                .context("cannot read the password from the terminal")?;
            let again = rpassword::prompt_password("the same again: ")
                .context("cannot read the password from the terminal")?;
            if first != again {
                bail!("the two passwords differ: nothing changed");
            }
            first
        }
        None => bail!("no terminal to read the password from: give --password-file FILE"),
    };
    if password.chars().count() < MIN_PASSWORD {
        bail!("a password has {MIN_PASSWORD} characters at the least");
    }
    Ok(password)
}

fn first_line(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Whether taking `name`'s admin role away would leave the lab with none.
/// Why a change to the last admin is refused.
fn last_admin(name: &str) -> String {
    format!(
        "{name} is the lab's last admin, and a lab without one could become open to anyone \
         who reaches it: make another user admin first"
    )
}

pub async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            name,
            role,
            password,
            db,
        } => {
            if let Err(why) = check_name(&name) {
                return usage(format!("{name}: {why}"));
            }
            let store = connect(&db).await?;
            if store.user_by_name(&name).await?.is_some() {
                return usage(format!("there is already a user named {name}"));
            }
            let hash = hash_password(read_password(&password, &name)?).await?;
            match store.create_user(&name, role, Some(&hash)).await {
                Err(StoreError::Conflict(message)) => return usage(message),
                other => other?,
            };
            log(&store, "user add", &format!("{name} as {role}")).await?;
            to_stdout!("added {name} ({role})");
        }
        UserCommand::List { db } => {
            let store = connect(&db).await?;
            let users = store.users().await?;
            if users.is_empty() {
                to_stdout!("no users: on loopback the lab needs no sign-in");
            }
            for user in users {
                to_stdout!(
                    "{:<24} {:<7} {:<9} since {}",
                    user.name,
                    user.role.as_str(),
                    if user.password_hash.is_some() {
                        "password"
                    } else {
                        "proxy"
                    },
                    utc(user.created_at)
                );
            }
        }
        UserCommand::Passwd { name, password, db } => {
            let store = connect(&db).await?;
            if store.user_by_name(&name).await?.is_none() {
                return usage(format!("there is no user named {name}"));
            }
            let hash = hash_password(read_password(&password, &name)?).await?;
            if !store.set_password(&name, &hash).await? {
                return usage(format!("there is no user named {name}"));
            }
            log(&store, "user passwd", &name).await?;
            to_stdout!("set {name}'s password; their open sessions have ended");
        }
        UserCommand::Role { name, role, db } => {
            let store = connect(&db).await?;
            match store.set_role(&name, role).await? {
                AccountChange::Done => {}
                AccountChange::NoSuchUser => {
                    return usage(format!("there is no user named {name}"))
                }
                AccountChange::LastAdmin => return usage(last_admin(&name)),
            }
            log(&store, "user role", &format!("{name} as {role}")).await?;
            to_stdout!("{name} is now a {role}");
        }
        UserCommand::Remove { name, db } => {
            let store = connect(&db).await?;
            match store.remove_user(&name).await? {
                AccountChange::Done => {}
                AccountChange::NoSuchUser => {
                    return usage(format!("there is no user named {name}"))
                }
                AccountChange::LastAdmin => return usage(last_admin(&name)),
            }
            log(&store, "user remove", &name).await?;
            to_stdout!("removed {name}; the share links they made are revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            role,
            owner,
            expires,
            may_upload,
            db,
        } => {
            if let Err(why) = check_name(&name) {
                return usage(format!("{name}: {why}"));
            }
            if may_upload && role < Role::Runner {
                return usage(format!(
                    "a {role}'s token cannot upload builds: give --role runner with --may-upload"
                ));
            }
            let store = connect(&db).await?;
            if let Some(owner) = &owner {
                match store.user_by_name(owner).await? {
                    None => return usage(format!("there is no user named {owner}")),
                    Some(user) if user.role < role => {
                        return usage(format!(
                            "{owner} is a {}: their token cannot be a {role}",
                            user.role
                        ))
                    }
                    Some(_) => {}
                }
            }
            let expires_at = match expires {
                None => None,
                Some(d) => match i64::try_from(d.as_millis()) {
                    Ok(ms) if ms > 0 => Some(mite_perf::clock::now_ms().saturating_add(ms)),
                    _ => return usage("--expires: give a positive time such as 90d"),
                },
            };
            let token = new_token()?;
            match store
                .create_token_as(&NewToken {
                    name: &name,
                    role,
                    token_hash: &token_hash(&token),
                    owner: owner.as_deref(),
                    expires_at,
                    may_upload,
                })
                .await
            {
                Err(StoreError::Conflict(message)) => return usage(message),
                other => other?,
            };
            let whose = owner
                .as_deref()
                .map(|o| format!(" for {o}"))
                .unwrap_or_default();
            let until = expires_at
                .map(|at| format!(" until {}", utc(at)))
                .unwrap_or_default();
            let uploads = if may_upload { ", may upload" } else { "" };
            log(
                &store,
                "token create",
                &format!("{name} as {role}{uploads}{whose}{until}"),
            )
            .await?;
            to_stderr!("token {name} ({role}{uploads}); it is shown this once, keep it secret:");
            to_stdout!("{token}");
        }
        TokenCommand::List { owner, db } => {
            let store = connect(&db).await?;
            let tokens = store.tokens(owner.as_deref()).await?;
            if tokens.is_empty() {
                to_stdout!("no tokens");
            }
            let now = mite_perf::clock::now_ms();
            for token in tokens {
                to_stdout!(
                    "{:<24} {:<7} {:<10} owner {:<16} made {}  {}  last used {}",
                    token.name,
                    token.role.as_str(),
                    if token.may_upload { "may upload" } else { "" },
                    token.owner.as_deref().unwrap_or("(command line)"),
                    utc(token.created_at),
                    match token.expires_at {
                        None => "never expires".to_string(),
                        Some(at) if at <= now => format!("expired {}", utc(at)),
                        Some(at) => format!("expires {}", utc(at)),
                    },
                    token.last_used_at.map_or_else(|| "never".into(), utc)
                );
            }
        }
        TokenCommand::Revoke { name, db } => {
            let store = connect(&db).await?;
            if !store.revoke_token(&name).await? {
                return usage(format!("there is no token named {name}"));
            }
            log(&store, "token revoke", &name).await?;
            to_stdout!("revoked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mite-perf label …`: who owns a label (and so may move its baseline).
#[derive(Subcommand, Debug)]
pub enum LabelCommand {
    /// List a label's owners, or add and remove some: only they (and
    /// admins) may mark the label's baseline. A label is owned by whoever
    /// first ran it until owners are named here.
    Owners {
        label: String,
        /// Make this user (or `token:NAME`) an owner (may be given several times).
        #[arg(long)]
        add: Vec<String>,
        /// No longer an owner (may be given several times).
        #[arg(long)]
        remove: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn label(command: LabelCommand) -> anyhow::Result<ExitCode> {
    match command {
        LabelCommand::Owners {
            label,
            add,
            remove,
            db,
        } => {
            let store = connect(&db).await?;
            for owner in &add {
                let name = owner.strip_prefix("token:").unwrap_or(owner);
                if let Err(why) = check_name(name) {
                    return usage(format!("{owner}: {why}"));
                }
                if store.add_label_owner(&label, owner).await? {
                    log(&store, "label owner add", &format!("{owner} of {label}")).await?;
                }
            }
            for owner in &remove {
                if store.remove_label_owner(&label, owner).await? {
                    log(&store, "label owner remove", &format!("{owner} of {label}")).await?;
                }
            }
            let owners = store.label_owners(&label).await?;
            if owners.is_empty() {
                to_stdout!("`{label}` has no owner: only admins may move its baseline");
            } else {
                to_stdout!("`{label}` is owned by {}", owners.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
