//! The command line (`syncbridge --help`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// syncbridge keeps Exchange / Microsoft 365 in step with Autotask, ConnectWise
/// and Dynamics 365 through sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "syncbridge", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Directory for the database, master key, installed plugins and compile cache (owner only:
    /// created with mode 0700, or tightened to it).
    #[arg(
        long,
        env = "SYNCBRIDGE_DATA_DIR",
        default_value = ".syncbridge",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://PATH (default: DATA_DIR/syncbridge.db) or postgres://USER@HOST/DB.
    #[arg(long, env = "SYNCBRIDGE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Master key file (created with mode 0600 if missing). SYNCBRIDGE_MASTER_KEY overrides it.
    #[arg(long, env = "SYNCBRIDGE_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,

    /// Extra CA certificate (PEM) to trust for outbound TLS; repeat for several.
    #[arg(long = "ca-cert", value_name = "PEM", global = true)]
    pub ca_certs: Vec<PathBuf>,

    /// Log filter, e.g. `info` or `syncbridge=debug,plugin=trace`.
    #[arg(long, env = "SYNCBRIDGE_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log lines as text (colour only on a terminal) or as one JSON object a
    /// line, for log shippers.
    #[arg(
        long,
        env = "SYNCBRIDGE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: REST API, health check, Prometheus /metrics and the scheduler.
    Serve(ServeArgs),
    /// Install, list and remove plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Configure and test connections to outside systems.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Configure profiles: source connection → mapper → target connection.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Run a profile now, with a progress bar and a summary table.
    ///
    /// The run is recorded like a scheduled one (see `runs list`) and refused
    /// while another run of the profile is queued or in progress.
    ///
    /// Exit status: 0 when every item was applied (or the run was held or
    /// planned), 2 when it applied but some items failed (partial: they are
    /// quarantined and retried next run), 1 when it failed or a stored plan was
    /// stale.
    Run {
        /// Profile name.
        profile: String,
        /// Plan only: store the plan (per-item, per-field diffs) under a plan id and write nothing.
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Apply exactly this stored plan (from a dry run or a run the brakes held);
        /// refused if the source or target changed underneath.
        #[arg(long, value_name = "PLAN_ID")]
        apply: Option<String>,
        /// No progress bar (for logs and scripts).
        #[arg(long)]
        quiet: bool,
        /// A full reconcile: read every source item and every linked target
        /// item, not only what changed (what a configuration change or the
        /// periodic reconcile does).
        #[arg(long, conflicts_with_all = ["apply"])]
        full: bool,
    },
    /// Filter preview: a dry run that shows, for every source item, which filter
    /// matched (or why none did), the site and contact types it maps to and the
    /// planned action. Nothing is written; the plan is stored for `--apply`.
    Preview {
        /// Profile name.
        profile: String,
    },
    /// Show a stored plan: counts and every item with its field changes.
    Plan {
        /// Plan id (printed by `run --dry-run`, or in the run's record).
        plan: String,
        /// Include items with no change.
        #[arg(long)]
        all: bool,
        /// Discard the plan instead (only proposed or held plans; nothing is written).
        #[arg(long, conflicts_with = "all")]
        discard: bool,
    },
    /// List stored plans (dry runs and held runs), newest first.
    Plans {
        /// Only plans of this profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Items a run could not write: list them, retry, skip or relink them.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Two-way fields both sides changed differently, held for review:
    /// list them, or resolve one by choosing the side whose value wins.
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Alerts that need an operator (stopped connections, held plans, failed runs).
    Alerts {
        /// Include resolved alerts.
        #[arg(long)]
        all: bool,
        /// Resolve this alert instead of listing.
        #[arg(long, value_name = "ALERT", conflicts_with = "all")]
        resolve: Option<String>,
    },
    /// List recent runs, or show one with its item outcomes.
    Runs {
        /// Show this run.
        run: Option<String>,
        /// Only runs of this profile.
        #[arg(long)]
        profile: Option<String>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// With a run: how many of its item outcomes to show.
        #[arg(long, default_value_t = 200)]
        items: u32,
    },
    /// Explain a synced record: which source value, rule and run produced each field.
    Explain {
        /// Profile name.
        profile: String,
        /// Source id or target id of the record.
        record: String,
        /// Only this field.
        #[arg(long)]
        field: Option<String>,
    },
    /// Create, list and revoke API tokens for the REST API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add and list customer companies (what API tokens are scoped to).
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Discover, approve, enable and configure the mailboxes of connections.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Flow 1's Exchange server profiles (server, synchronization account,
    /// synchronization settings, failure notifications) and their PSA resources.
    #[command(subcommand)]
    Exchange(ExchangeCommand),
    /// Flow 3's email server profiles: how a Dynamics organization's mailboxes reach
    /// Exchange (on premises or hybrid through EWS, Exchange Online through Graph).
    #[command(subcommand, name = "email-profile")]
    EmailProfile(EmailProfileCommand),
    /// Flow 3's Dynamics organizations: default email processing, mailboxes,
    /// approval and Test & Enable.
    #[command(subcommand)]
    Dynamics(DynamicsCommand),
    /// Run an Exchange profile's troubleshooting tree and name the cause and the fix.
    ///
    /// The steps, in order, stopping at the first that fails: 1 general settings and the
    /// save's test with the synchronization account (host name resolves, port open, TLS
    /// certificate trusted, EWS endpoint and virtual directory, Autodiscover, sign-in: wrong
    /// password, MFA without an app password, Basic disabled); 2 service account or individual
    /// credentials; 3 impersonation rights for each enabled resource's mailbox; 4 try the other
    /// mode (and an account that is a licensed user with a mailbox); 5 each resource's own test
    /// connection; 6 multi-factor authentication of a resource whose credential is refused.
    /// Each finding has its step, check, outcome (ok, warning, failed, skipped), cause and
    /// remedy. Exits 1 when a step failed.
    #[command(
        after_help = "Examples:\n  syncbridge diagnose contoso\n  syncbridge diagnose contoso --resource 30 --json"
    )]
    Diagnose {
        /// Exchange profile id.
        profile: String,
        /// Only this resource (PSA resource id; it must be enabled); default every enabled one.
        #[arg(long, value_name = "R")]
        resource: Option<String>,
        /// Print the diagnosis as JSON (the REST API's answer) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `quarantine` commands.
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List held conflicts: the field, the value both sides last agreed on,
    /// each side's value now, and why it is held.
    List {
        /// Only conflicts of this profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Resolve a held conflict: the next run writes the winner's value to the other side.
    Resolve {
        profile: String,
        source_id: String,
        field: String,
        /// The side whose value wins.
        #[arg(long, value_enum)]
        winner: Winner,
    },
}

/// The side whose value wins a conflict.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Winner {
    Source,
    Target,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined items with their error class and attempts.
    List {
        /// Only items of this profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Retry an item on the profile's next run.
    Retry { profile: String, source_id: String },
    /// Stop retrying an item until the source brings it again.
    Skip { profile: String, source_id: String },
    /// Link an item to an existing target record (matched, not owned) and retry it there.
    Relink {
        profile: String,
        source_id: String,
        target_id: String,
    },
}

/// `profile` commands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add a profile (an existing one is changed with `profile update`).
    Add(Box<AddProfile>),
    /// List profiles.
    List,
    /// Show a profile: what it reads, maps and writes, its rules and schedule.
    Show {
        /// Profile name.
        name: String,
        /// Print it as JSON (the API's `GET /profiles/{id}` answer).
        #[arg(long)]
        json: bool,
    },
    /// Change a profile; options left out keep their value.
    Update(Box<UpdateProfile>),
    /// Remove a profile with its links, cursors, plans and quarantine (not
    /// while a run of it is queued or running). What it wrote stays.
    Remove {
        /// Profile name.
        name: String,
    },
}

/// `profile update` options.
#[derive(Debug, Args)]
pub struct UpdateProfile {
    /// Profile name.
    pub name: String,
    /// Source connection.
    #[arg(long)]
    pub source: Option<String>,
    /// What to read from the source, e.g. `users`.
    #[arg(long)]
    pub source_scope: Option<String>,
    /// Mapper plugin id.
    #[arg(long)]
    pub mapper: Option<String>,
    /// Mapper options JSON (replaces all of them).
    #[arg(long)]
    pub mapper_options: Option<String>,
    /// Target connection.
    #[arg(long)]
    pub target: Option<String>,
    /// Where to write in the target, e.g. `contacts:company=12`.
    #[arg(long)]
    pub target_scope: Option<String>,
    /// Engine rules JSON (replaces all of them; see `profile add --help`).
    #[arg(long)]
    pub rules: Option<String>,
    /// Items per page and per write batch (1 to 10000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: Option<u32>,
    /// Move the profile to this company.
    #[arg(long, conflicts_with = "no_company")]
    pub company: Option<String>,
    /// Take the profile out of its company.
    #[arg(long)]
    pub no_company: bool,
    /// Run every this many seconds (the flow's minimum to 2678400).
    #[arg(long, value_name = "SECONDS", conflicts_with = "no_every")]
    pub every: Option<u64>,
    /// Stop running it at an interval.
    #[arg(long)]
    pub no_every: bool,
    /// Run daily at this time, e.g. `02:30`: local time in the company's time
    /// zone (`company add --time-zone`), UTC without a company.
    #[arg(long, value_name = "HH:MM", conflicts_with = "no_daily")]
    pub daily: Option<String>,
    /// Stop the daily run.
    #[arg(long)]
    pub no_daily: bool,
    /// Scheduled runs on (`true`) or off (`false`); manual runs always work.
    #[arg(long, value_name = "BOOL")]
    pub enabled: Option<bool>,
    /// Do not queue a run on saving.
    #[arg(long)]
    pub no_run: bool,
}

/// `profile add` options.
#[derive(Debug, Args)]
pub struct AddProfile {
    /// Profile name.
    pub name: String,
    /// Source connection.
    #[arg(long)]
    pub source: String,
    /// What to read from the source, e.g. `users`.
    #[arg(long)]
    pub source_scope: String,
    /// Mapper plugin id.
    #[arg(long)]
    pub mapper: String,
    /// Mapper options JSON.
    #[arg(long, default_value = "{}")]
    pub mapper_options: String,
    /// Target connection.
    #[arg(long)]
    pub target: String,
    /// Where to write in the target, e.g. `contacts:company=12`.
    #[arg(long)]
    pub target_scope: String,
    /// Engine rules JSON (blank_never_overwrites, match_existing, update_matched, on_remove,
    /// remove_matched, reactivate, truth, update_only, brakes {max_removals, max_removal_share, share_from}).
    #[arg(long, default_value = "{}")]
    pub rules: String,
    /// Items per page and per write batch (1 to 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub page_size: u32,
    /// The customer company the profile belongs to (see `company add`).
    #[arg(long)]
    pub company: Option<String>,
    /// Run every this many seconds: from the flow's minimum (60, or 600 for
    /// calendar flows) up to 2678400 (31 days); other values are refused.
    #[arg(long, value_name = "SECONDS")]
    pub every: Option<u64>,
    /// Run daily at this time, e.g. `02:30`: local time in the company's time
    /// zone (`company add --time-zone`), UTC without a company.
    #[arg(long, value_name = "HH:MM")]
    pub daily: Option<String>,
    /// Do not queue a run on saving (a running `syncbridge serve` starts a saved
    /// profile's first run within seconds).
    #[arg(long)]
    pub no_run: bool,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SYNCBRIDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Install (or update) every plugin package found in this directory at start-up.
    #[arg(long, value_name = "DIR")]
    pub install_from: Option<PathBuf>,

    /// Runs this process executes at once (scheduled, saved, API-requested).
    #[arg(long, env = "SYNCBRIDGE_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Serve the API only; run nothing (another process runs the scheduler).
    #[arg(long)]
    pub no_scheduler: bool,

    /// Serve GET /metrics (Prometheus) without a token. By default it needs an
    /// API token not scoped to a company (any role); open it only when the
    /// port is reachable from the monitoring network alone.
    #[arg(long)]
    pub metrics_public: bool,

    /// Recipients of notices for runs of profiles without a company
    /// (`;`-separated). SMTP is configured by SYNCBRIDGE_SMTP_URL (see docs/notifications.md).
    #[arg(long, env = "SYNCBRIDGE_NOTIFY", value_name = "ADDRESSES")]
    pub notify: Option<String>,
}

/// `plugin` commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install a plugin package (a directory or .tar.gz with plugin.toml and the component).
    ///
    /// The component's sha256 is verified against plugin.toml and --sha256; archives must be
    /// pinned. The component is compiled and checked against the WIT world before it is accepted.
    Install {
        /// Package directory or archive.
        path: PathBuf,
        /// Expected sha256 of the component (hex).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// List installed plugins.
    List,
    /// Remove a plugin that no connection uses.
    Remove {
        /// Plugin id.
        id: String,
    },
}

/// `connection` commands.
#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection: a configured instance of a connector plugin.
    ///
    /// Credentials are read from a JSON file or standard input, never from the command line,
    /// and are stored encrypted. Format: {"SLOT": {"kind": "basic", "username": "...",
    /// "password": "..."}}; kinds: basic, headers ({"headers": {...}}),
    /// oauth2-client-credentials (token_url, client_id, client_secret, scope), bearer (token).
    #[command(verbatim_doc_comment)]
    Add(AddConnection),
    /// Change a connection: configuration, allowed hosts, private network,
    /// request limit, credentials. Options left out keep their value.
    ///
    /// Credentials are bound to the hosts and endpoints they were entered for:
    /// changing a URL-like configuration key (url, server, host, endpoint,
    /// domain, *_url, *_host, ... or any http(s) URL value), the allowed hosts
    /// or the private-network flag needs every stored credential entered again
    /// (--credentials-file/--credentials-stdin) or removed (--remove-credential)
    /// in the same command. Changing a server setting makes the next run of
    /// every profile using the connection a full re-sync.
    #[command(verbatim_doc_comment)]
    Update(UpdateConnection),
    /// List connections.
    List,
    /// Check a connection's configuration and let its plugin test the service.
    Test {
        /// Connection name.
        name: String,
    },
    /// Remove a connection with its credentials and state.
    Remove {
        /// Connection name.
        name: String,
    },
}

/// `connection add` options.
#[derive(Debug, Args)]
pub struct AddConnection {
    /// Connection name (letters, digits, '-', '_').
    pub name: String,
    /// Id of the connector plugin.
    #[arg(long)]
    pub plugin: String,
    /// Configuration JSON for the plugin.
    #[arg(long, conflicts_with = "config_file", default_value = "{}")]
    pub config: String,
    /// Read the configuration JSON from a file.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Host the plugin may call for this connection (`host`, `host:port`, `*.domain`); repeat.
    /// Without any, the plugin can reach nothing.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// Allow loopback, private and other non-public addresses (on-premises servers, local
    /// simulators).
    #[arg(long)]
    pub allow_private_network: bool,
    /// Outbound requests in flight at once (default: the plugin's limit).
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    /// Read credentials JSON from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "credentials_stdin")]
    pub credentials_file: Option<PathBuf>,
    /// Read credentials JSON from standard input.
    #[arg(long)]
    pub credentials_stdin: bool,
    /// The customer company that owns the connection (see `company add`);
    /// none for the MSP's own (a PSA shared by every company).
    #[arg(long)]
    pub company: Option<String>,
}

/// `connection update` options.
#[derive(Debug, Args)]
pub struct UpdateConnection {
    /// Connection name.
    pub name: String,
    /// Replace the configuration with this JSON object.
    #[arg(long, conflicts_with = "config_file")]
    pub config: Option<String>,
    /// Replace the configuration with the JSON object in this file.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Replace the allowed hosts with these patterns (`host`, `host:port`, `*.domain`); repeat.
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// Remove every allowed host (the plugin can then reach nothing).
    #[arg(long, conflicts_with = "allow_hosts")]
    pub no_allowed_hosts: bool,
    /// Allow (true) or refuse (false) loopback and private addresses.
    #[arg(long, value_name = "BOOL")]
    pub allow_private_network: Option<bool>,
    /// Outbound requests in flight at once.
    #[arg(long, conflicts_with = "plugin_limit")]
    pub max_concurrent: Option<u32>,
    /// Go back to the plugin's own request limit.
    #[arg(long)]
    pub plugin_limit: bool,
    /// Set the credential slots in this JSON file (same format as `connection add`).
    #[arg(long, value_name = "FILE", conflicts_with = "credentials_stdin")]
    pub credentials_file: Option<PathBuf>,
    /// Read the credential slots to set as JSON from standard input.
    #[arg(long)]
    pub credentials_stdin: bool,
    /// Remove this credential slot; repeat.
    #[arg(long = "remove-credential", value_name = "SLOT")]
    pub remove_credentials: Vec<String>,
}

/// `token` commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (once: only its hash is stored).
    ///
    /// Roles: viewer (read), operator (viewer + run, dry run, apply or discard plans,
    /// quarantine actions, enable/disable profiles, resolve alerts, test connections),
    /// admin (everything). With --company the token sees only that company's objects.
    Create {
        /// A name saying who or what uses the token.
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_parser = ["admin", "operator", "viewer"])]
        role: String,
        /// Scope the token to this company.
        #[arg(long)]
        company: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token; requests with it are refused from now on.
    Revoke {
        /// Token id (from `token list`).
        id: String,
    },
}

/// `company` commands.
#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// Add (or update) a customer company.
    Add {
        /// Company id (letters, digits, '-', '_').
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Recipients of failure notices and confirmations, `;`-separated.
        #[arg(long, default_value = "")]
        notify: String,
        /// IANA time zone of the company, e.g. `Europe/Berlin`: its profiles'
        /// `--daily` times are local time there. Default `UTC` (an existing
        /// company keeps its zone).
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
    },
    /// Change a company; options left out keep their value.
    Update {
        /// Company id.
        id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Recipients of failure notices and confirmations, `;`-separated.
        #[arg(long)]
        notify: Option<String>,
        /// IANA time zone of the company, e.g. `Europe/Berlin`: its profiles'
        /// `--daily` times are local time there.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
    },
    /// List companies.
    List,
}

/// `mailbox` commands.
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// List mailboxes with their flags and status.
    List {
        /// Only mailboxes of this connection.
        #[arg(long)]
        connection: Option<String>,
    },
    /// Read a connection's mailboxes from its directory (users with a mail
    /// address); new ones arrive disabled and unapproved.
    Discover {
        /// Connection name.
        connection: String,
    },
    /// Enable a mailbox (it must be approved first).
    Enable {
        /// Mailbox id, `<connection>:<address>` (from `mailbox list`).
        id: String,
    },
    /// Disable a mailbox.
    Disable {
        /// Mailbox id, `<connection>:<address>`.
        id: String,
    },
    /// Approve a mailbox for synchronisation (it stays disabled until enabled).
    Approve {
        /// Mailbox id, `<connection>:<address>`.
        id: String,
    },
    /// Set a mailbox's settings (a JSON object), replacing them unless --merge.
    Settings {
        /// Mailbox id, `<connection>:<address>`.
        id: String,
        /// The settings, e.g. '{"sync_calendar": true}'.
        #[arg(long)]
        json: String,
        /// Merge top-level keys into the stored settings (`null` removes a key).
        #[arg(long)]
        merge: bool,
    },
}

/// `exchange` commands.
#[derive(Debug, Subcommand)]
pub enum ExchangeCommand {
    /// List Exchange profiles with their server, interval and last test.
    List,
    /// Show a profile: every setting (never a secret) and the last connection test.
    Show {
        /// Profile id.
        id: String,
    },
    /// Create a profile from a settings file, test its connection and save it.
    ///
    /// The file is the whole form as JSON: name, enabled, psa_connection,
    /// server {address, virtual_directory, domain, version: 2013|2016|2019|online,
    /// hosted_by_third_party, use_graph}, interval_minutes (at least 10),
    /// account {auth: basic|oauth, username, mailbox, tenant, token_url,
    /// use_for_users}, notify_to ("a@x; b@y"), sync {allow_appointments,
    /// allow_contacts, allow_service_calls, allow_todos, public_folder_all_contacts,
    /// import_appointments: all|no-detail|none, import_free_time, past_days 1..30,
    /// recurring_days 1..30}, allow_private_network. Exits 1 when the test fails
    /// (the profile is saved, but nothing synchronizes until a save passes).
    Add {
        /// Profile id (letters, digits, '-', '_').
        id: String,
        /// The settings JSON.
        #[arg(long, value_name = "FILE")]
        settings_file: PathBuf,
        /// A file holding the synchronization account's password (OAuth: client secret).
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// The customer company that owns the profile.
        #[arg(long)]
        company: Option<String>,
    },
    /// Replace a profile's settings, test and save; refused while one of its syncs runs.
    /// A changed version, address, virtual directory or domain re-synchronizes every item.
    Update {
        /// Profile id.
        id: String,
        /// The settings JSON (the whole form, as for `add`).
        #[arg(long, value_name = "FILE")]
        settings_file: PathBuf,
        /// Enter the account's secret again (needed when the server or the account changes).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
    },
    /// Remove a profile with its resources and its connection.
    Remove {
        /// Profile id.
        id: String,
    },
    /// List the profile's PSA resources: enabled, status, last attempted synchronization.
    Resources {
        /// Profile id.
        id: String,
    },
    /// Read the PSA connection's resources (new ones arrive disabled).
    Discover {
        /// Profile id.
        id: String,
    },
    /// Enable resources (their mailboxes get the toggles the profile allows).
    Enable {
        /// Profile id.
        id: String,
        /// Resource ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        resources: Vec<String>,
        /// Every listed resource with an e-mail address.
        #[arg(long)]
        all: bool,
    },
    /// Disable resources (their settings are kept).
    Disable {
        /// Profile id.
        id: String,
        /// Resource ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        resources: Vec<String>,
        /// Every listed resource.
        #[arg(long)]
        all: bool,
    },
    /// Set an enabled resource's toggles (each must be allowed by the profile).
    ResourceSettings {
        /// Profile id.
        id: String,
        /// Resource id.
        resource: String,
        /// e.g. '{"psa_appointments_to_exchange": true, "exchange_appointments_to_psa": true,
        /// "contacts": false, "service_calls": true, "todos": true}'.
        #[arg(long)]
        json: String,
    },
    /// Enter a user's own credential (only when the account does not impersonate users);
    /// it is sealed and never shown.
    UserCredential {
        /// Profile id.
        id: String,
        /// Resource id.
        resource: String,
        /// Credential JSON, e.g. {"kind": "basic", "username": "...", "password": "..."}.
        #[arg(long, value_name = "FILE")]
        credential_file: PathBuf,
    },
}

/// `email-profile` commands.
#[derive(Debug, Subcommand)]
pub enum EmailProfileCommand {
    /// List email server profiles.
    List,
    /// Show a profile's settings (never a secret).
    Show {
        /// Profile id.
        id: String,
    },
    /// Create a profile from a settings file.
    ///
    /// The file is the whole form as JSON: name, description, server_type
    /// (exchange | exchange-hybrid | exchange-online), use_autodiscover with
    /// autodiscover_domains, or incoming_location and outgoing_location (EWS URLs;
    /// Exchange Online: the Graph root, default https://graph.microsoft.com/v1.0),
    /// incoming {credentials: user-or-queue | profile, username, protocol:
    /// auto-detect | basic | oauth}, same_settings_for_outgoing (default true) or
    /// outgoing {...}, tenant and token_url (Exchange Online), process_email_from
    /// (RFC 3339), min_polling_minutes (default 5), max_concurrent_connections
    /// (default 10), move_failed_to_undeliverable, allow_credentials_over_http,
    /// allow_private_network. Anonymous and integrated authentication are refused.
    #[command(
        after_help = "Example settings:\n  {\"name\": \"Contoso Exchange\", \"server_type\": \"exchange\",\n   \"incoming_location\": \"https://mail.contoso.com/EWS/Exchange.asmx\",\n   \"outgoing_location\": \"https://mail.contoso.com/EWS/Exchange.asmx\",\n   \"incoming\": {\"credentials\": \"profile\", \"username\": \"CONTOSO\\\\crmsync\"}}"
    )]
    Add {
        /// Profile id (letters, digits, '-', '_').
        id: String,
        /// The settings JSON.
        #[arg(long, value_name = "FILE")]
        settings_file: PathBuf,
        /// A file holding the password of incoming.username (Exchange Online: the client
        /// secret); needed with the profile's credentials.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        /// A file holding the password of outgoing.username when outgoing has its own account.
        #[arg(long, value_name = "FILE")]
        outgoing_secret_file: Option<PathBuf>,
        /// The customer company that owns the profile.
        #[arg(long)]
        company: Option<String>,
    },
    /// Replace a profile's settings (the whole form).
    Update {
        /// Profile id.
        id: String,
        #[arg(long, value_name = "FILE")]
        settings_file: PathBuf,
        /// Enter the secret again (needed when a location or the account changes).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        outgoing_secret_file: Option<PathBuf>,
    },
    /// Remove a profile and its connection (refused while mailboxes name it).
    Remove {
        /// Profile id.
        id: String,
    },
    /// Enter a mailbox's own credentials (a user-or-queue profile); sealed, never shown.
    Credential {
        /// Profile id.
        id: String,
        /// The mailbox's e-mail address.
        address: String,
        /// The mailbox's user name.
        #[arg(long)]
        username: String,
        /// A file holding the mailbox's password.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
    },
    /// Test & Enable every mailbox of the profile (in the background; --wait runs it here).
    Test {
        /// Profile id.
        id: String,
        /// Run the tests now and print the outcome instead of leaving them to `serve`.
        #[arg(long)]
        wait: bool,
    },
}

/// `dynamics` commands. ORG is the connection of the `dynamics` plugin.
#[derive(Debug, Subcommand)]
pub enum DynamicsCommand {
    /// Show or set the organization's default email processing ("Email Configuration Settings").
    Defaults {
        /// The organization's connection id.
        org: String,
        /// The default email server profile.
        #[arg(long)]
        server_profile: Option<String>,
        /// Incoming email: server-side-sync | none.
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        incoming: Option<String>,
        /// Outgoing email: server-side-sync | none.
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        outgoing: Option<String>,
        /// Appointments, contacts and tasks: server-side-sync | none.
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        act: Option<String>,
        /// Process email only for approved mailboxes: true | false.
        #[arg(long)]
        require_approval: Option<bool>,
    },
    /// Read the organization's active mailboxes from Dynamics.
    Refresh {
        /// The organization's connection id.
        org: String,
    },
    /// List the organization's mailboxes with their profile, approval and test statuses.
    Mailboxes {
        /// The organization's connection id.
        org: String,
    },
    /// Apply the organization's default email settings to mailboxes, then Test & Enable them.
    ApplyDefaults {
        /// Mailbox ids (`<org>:<address>`).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Do not test and enable them afterwards.
        #[arg(long)]
        no_test: bool,
    },
    /// Set the profile and delivery methods of many mailboxes (all or nothing).
    Edit {
        /// Mailbox ids.
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        server_profile: Option<String>,
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        incoming: Option<String>,
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        outgoing: Option<String>,
        #[arg(long, value_parser = ["server-side-sync", "none"])]
        act: Option<String>,
        /// "Sync items with Exchange from this org only, even if Exchange was set to sync with
        /// a different org": the next Test & Enable takes the mailboxes' appointments,
        /// contacts and tasks over from the organization marked in them.
        #[arg(long)]
        sync_from_this_org_only: Option<bool>,
    },
    /// Approve email for mailboxes (required before processing, unless the organization
    /// turned the requirement off).
    Approve {
        /// Mailbox ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Diagnose a mailbox Exchange refuses (KB 3212785, 401 Unauthorized): which of the five
    /// causes applies (1 the Dynamics address is not the Exchange mailbox's, 2 a hybrid
    /// profile for an Exchange Online mailbox, 3 no Exchange Online licence, 4 different
    /// tenants, 5 Basic authentication off for EWS), from the evidence the profile's connector
    /// gathers, with the article's resolution. Exits 1 when a cause applies.
    Diagnose {
        /// Mailbox id.
        id: String,
        /// Print the diagnosis as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a mailbox's processing: per kind (incoming-email, outgoing-email, appointments,
    /// tasks, contacts) its engine profile, whether it runs and how often, its latest run, sent
    /// e-mails not yet marked sent in Dynamics, and messages moved to Undeliverable. Processing starts when
    /// Test & Enable succeeds; run a kind now with `syncbridge run PROFILE`.
    #[command(
        after_help = "Example:\n  syncbridge dynamics processing contoso-crm:ann@contoso.com"
    )]
    Processing {
        /// Mailbox id.
        id: String,
        /// Print it as JSON (the REST API's answer).
        #[arg(long)]
        json: bool,
    },
    /// Test & Enable mailboxes (in the background; --wait runs the tests here).
    TestEnable {
        /// Mailbox ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Run the tests now and print the outcome.
        #[arg(long)]
        wait: bool,
    },
}
