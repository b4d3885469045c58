//! The command line, exactly as typed; validation happens in `config`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "hearth", version, about = "Self-hosted, privacy-first product analytics that speaks Mixpanel's API")]
pub(crate) struct Cli {
    /// A TOML configuration file (default: ./hearth.toml when it exists).
    #[arg(long, global = true, env = "HEARTH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: ingestion, export and operations endpoints.
    Serve(ServeArgs),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Load Mixpanel raw-export or import JSONL (optionally .gz) into a project.
    Import(ImportArgs),
    /// Write a project's events as Mixpanel raw-export JSONL.
    Export(ExportArgs),
    /// Generate the deterministic synthetic SaaS data set.
    Gen(GenArgs),
    /// Run a report (insights, funnel, retention, flows, ...) from a JSON spec.
    Query(QueryArgs),
    /// A project's privacy policy, the PII findings report, and re-applying
    /// the policy to stored data.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Rotate the master key and project data keys (no downtime).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The data subject's rights: erase a person, or export all held on them.
    #[command(subcommand)]
    Gdpr(GdprCommand),
    /// The audit log: list, verify the hash chain, export as JSONL.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Service accounts: identities without login that hold API keys.
    #[command(subcommand)]
    ServiceAccount(ServiceAccountCommand),
    /// Scoped, expiring, rotatable API keys of service accounts.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Bootstrap the first owner.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Members of the organisation: invite, list, disable, new enrolment link.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Members' sessions: list, and revoke (the emergency switch: --all).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Incident response: contain a credential, an address or everything.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Alerts raised, the rules that raise them, and a test delivery.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Export guardrails: the approval thresholds, and the requests above them.
    #[command(subcommand)]
    Exports(ExportsCommand),
    /// Move every project's events to ClickHouse (storage.clickhouse_*
    /// settings) or back into the embedded store; resumable. Stop the
    /// server first.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Where the events (clickhouse, embedded) or the metadata (postgres) go.
    #[arg(long, value_enum)]
    pub(crate) to: MigrateTarget,
    /// Forget an earlier run's progress and copy everything again.
    #[arg(long)]
    pub(crate) restart: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum MigrateTarget {
    /// Events, into ClickHouse (storage.clickhouse_*).
    Clickhouse,
    /// Events, back from ClickHouse into this node's embedded store.
    Embedded,
    /// Metadata, audit log and key store, into PostgreSQL (metadata.postgres_*).
    Postgres,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCommand {
    /// Alerts raised, oldest first.
    List {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        json: bool,
    },
    /// Every rule with its settings.
    Rules {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        json: bool,
    },
    /// Changes one rule: canary, export_volume, new_country, unusual_hours,
    /// failed_logins, key_allowlist. Holds on the server's next request.
    Set {
        #[command(flatten)]
        data: DataArg,
        rule: String,
        #[arg(long)]
        enabled: Option<bool>,
        /// `revoke` (disable the key or revoke the session that set it
        /// off) or `none`.
        #[arg(long)]
        action: Option<String>,
        /// The rule's threshold (see `hearth alerts rules`).
        #[arg(long)]
        threshold: Option<f64>,
    },
    /// Sends a test alert through the configured webhook and mail, and
    /// says whether each arrived.
    Test,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExportsCommand {
    /// Shows, or sets, the thresholds above which an export needs a second
    /// owner's approval (`none` removes one).
    Settings {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        approval_rows: Option<String>,
        #[arg(long)]
        approval_users: Option<String>,
    },
    /// Export requests waiting for, or given, a decision (owners decide in
    /// the API or the dashboard, with a passkey step-up).
    Requests {
        #[command(flatten)]
        data: DataArg,
        /// pending, approved, refused or used.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Entries, oldest first.
    List {
        #[command(flatten)]
        data: DataArg,
        /// From this time: a date (YYYY-MM-DD), RFC 3339, or milliseconds.
        #[arg(long)]
        since: Option<String>,
        /// Before this time.
        #[arg(long)]
        until: Option<String>,
        /// `kind:id` of the actor, or a prefix (e.g. `project_secret:1`, `cli:`).
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// Only this project's entries.
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain; with the configured sink, also check that the
    /// log still holds the sink's last entry. Exit status 1 when broken.
    Verify {
        #[command(flatten)]
        data: DataArg,
        /// A JSONL copy (the sink) whose last entry the log must hold.
        #[arg(long)]
        sink: Option<PathBuf>,
    },
    /// Every entry as JSONL, to a file or standard output.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ProjectArg {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name.
    #[arg(long)]
    pub(crate) project: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PrivacyCommand {
    /// Print the current policy (TOML, or JSON with --json) and its version.
    Show {
        #[command(flatten)]
        target: ProjectArg,
        #[arg(long)]
        json: bool,
    },
    /// Set a new policy version from a TOML or JSON file; it applies to
    /// events from now on (see `apply --rewrite` for stored ones).
    Set {
        #[command(flatten)]
        target: ProjectArg,
        /// The policy document (.toml or .json).
        file: PathBuf,
    },
    /// List the policy versions.
    History {
        #[command(flatten)]
        target: ProjectArg,
    },
    /// Personal data found in free-form values and data blocked by the
    /// policy, counted per event and property (never the values).
    Findings {
        #[command(flatten)]
        target: ProjectArg,
        /// json or table.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Re-apply the current policy to stored events, with a progress bar.
    /// Needs the server stopped (it holds the store).
    Apply {
        #[command(flatten)]
        target: ProjectArg,
        /// Required: rewriting stored data is deliberate.
        #[arg(long)]
        rewrite: bool,
    },
    /// Enforce the retention of the policy now (the server does it hourly).
    Retention {
        #[command(flatten)]
        target: ProjectArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Rotate the master key (all project keys are re-wrapped) and, with
    /// --project, that project's data key (all subject keys re-wrapped).
    Rotate {
        #[command(flatten)]
        data: DataArg,
        /// Rotate the master key.
        #[arg(long)]
        master: bool,
        /// Rotate this project's data key.
        #[arg(long)]
        project: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GdprCommand {
    /// Erase people: their key is destroyed at once (personal fields become
    /// unreadable everywhere, backups included), their profile deleted, and
    /// their events leave every report now and the parts when compacted.
    Delete {
        #[command(flatten)]
        target: ProjectArg,
        /// Distinct ids (any id of a merged identity erases all of it).
        #[arg(long = "distinct-id", required = true, num_args = 1..)]
        distinct_ids: Vec<String>,
    },
    /// Everything held on one person, decrypted, as JSON (GDPR Art. 15/20).
    Export {
        #[command(flatten)]
        target: ProjectArg,
        #[arg(long = "distinct-id")]
        distinct_id: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DataArg {
    /// The data directory (default ./hearth-data).
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// A proxy whose X-Forwarded-For is believed (CIDR); repeatable.
    #[arg(long = "trusted-proxy")]
    pub(crate) trusted_proxies: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Create a project; prints its token and secret once.
    Create {
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a project's settings.
    Set {
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// How precise stored locations are: country (default), region or city.
        /// Region and city need the city database (scripts/install-geo.sh --city).
        #[arg(long, value_parser = ["none", "country", "region", "city"])]
        geo_precision: Option<String>,
        /// The IANA time zone reports count days in (e.g. Europe/Berlin; default UTC).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List projects (names and public tokens).
    List {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new public token; the old one keeps working for the overlap,
    /// so data collection never stops while SDKs are redeployed.
    RotateToken {
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// How long the old token stays valid (e.g. 7d, 24h, 30m; 0 ends it now).
        #[arg(long, default_value = "7d")]
        overlap: String,
    },
    /// Switch the Mixpanel-compatible project secret off (refused from the
    /// next request on) or on again.
    Secret {
        name: String,
        #[command(flatten)]
        data: DataArg,
        #[arg(long, conflicts_with = "enable", required_unless_present = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create the first owner and print a one-time enrolment link (one hour)
    /// to register their passkey.
    Create {
        email: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// "Phishing-resistant only" (the default): passkeys for everyone. Off:
    /// viewers and analysts may also use a password with TOTP.
    PhishingResistantOnly {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        switch: Switch,
    },
    /// Whether audit entries record source addresses (off, the default:
    /// only their countries). Turning it on stores addresses in the audit log.
    AuditAddresses {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        switch: Switch,
    },
    /// The organisation's session timeouts (default 30m idle, 12h absolute).
    Sessions {
        #[command(flatten)]
        data: DataArg,
        /// Idle timeout, e.g. 30m.
        #[arg(long)]
        idle: String,
        /// Absolute lifetime, e.g. 12h.
        #[arg(long)]
        absolute: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MembersCommand {
    /// Invite a member: prints a one-time enrolment link.
    Invite {
        email: String,
        #[command(flatten)]
        data: DataArg,
        /// owner, admin, analyst or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Raw exports and user-level downloads.
        #[arg(long)]
        export: bool,
        /// See decrypted personal fields (each reveal audited).
        #[arg(long)]
        view_pii: bool,
        /// Limit to these projects (names; default all).
        #[arg(long = "project", value_delimiter = ',')]
        projects: Vec<String>,
    },
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Disable a member: their sessions die at once.
    Disable {
        email: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// A new one-time enrolment link (a lost passkey).
    Enrol {
        email: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke sessions: one, a member's, or all. Each fails on its next request.
    Revoke {
        /// A session's short id.
        id: Option<String>,
        #[command(flatten)]
        data: DataArg,
        #[arg(long, conflicts_with = "id")]
        member: Option<String>,
        #[arg(long, conflicts_with_all = ["id", "member"])]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum IncidentCommand {
    /// Cut off a credential, a member, a session, an address, or everything.
    /// Each step is audited, printed, and holds on the very next request.
    Contain {
        #[command(flatten)]
        data: DataArg,
        /// An API key id: disabled.
        #[arg(long)]
        key: Option<i64>,
        /// A member's email: their sessions revoked, the member disabled.
        #[arg(long)]
        user: Option<String>,
        /// A session's short id: revoked.
        #[arg(long)]
        session: Option<String>,
        /// An address or CIDR: blocked everywhere, ingestion included.
        #[arg(long)]
        address: Option<String>,
        /// Everything: every session revoked, every key disabled, every
        /// project secret rotated, every public token rotated (the old one
        /// keeps collecting for --token-overlap), exports frozen.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = "24h")]
        token_overlap: String,
    },
    /// Exactly whose data, which fields, a credential saw in a window:
    /// computed from the audit; written as a folder (needs the server
    /// stopped: it reads the store's user keys).
    Report {
        #[command(flatten)]
        data: DataArg,
        /// Window start: a date, RFC 3339 time or milliseconds.
        #[arg(long)]
        from: String,
        /// Window end (exclusive).
        #[arg(long)]
        to: String,
        #[arg(long)]
        key: Option<i64>,
        #[arg(long)]
        session: Option<String>,
        /// A member's email.
        #[arg(long)]
        user: Option<String>,
        /// Source country (addresses are never recorded).
        #[arg(long)]
        country: Option<String>,
        /// Where the files go.
        #[arg(long)]
        out: PathBuf,
        /// Decrypt the people's contact fields into the notification list
        /// (an audited reveal).
        #[arg(long)]
        contacts: bool,
    },
    /// Lift the export freeze (and, with --address, a block).
    Lift {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceAccountCommand {
    /// Create a service account (it cannot log in; it holds API keys).
    Create {
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Disable an account: all its keys stop working on the next request.
    Disable {
        name: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        #[command(flatten)]
        data: DataArg,
        /// The service account that holds it.
        #[arg(long)]
        account: String,
        /// ingest, read, export, admin (comma-separated or repeated).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Projects it may act on (names; comma-separated or repeated).
        #[arg(long = "project", value_delimiter = ',', required = true)]
        projects: Vec<String>,
        /// Expiry from now (e.g. 90d).
        #[arg(long)]
        expires_in: Option<String>,
        /// Source addresses it may be used from (CIDRs); none: any.
        #[arg(long = "allow-cidr")]
        allow_cidrs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        json: bool,
    },
    /// Disable a key at once.
    Disable {
        id: i64,
        #[command(flatten)]
        data: DataArg,
    },
    /// Issue a replacement with the same rights; the old key keeps working
    /// for the overlap.
    Rotate {
        id: i64,
        #[command(flatten)]
        data: DataArg,
        #[arg(long, default_value = "24h")]
        overlap: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name (with the data directory; not with --url).
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub(crate) project: Option<String>,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// JSONL files, plain or gzip.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

/// A running server instead of the data directory.
#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// The server's address, e.g. https://hearth.example.com: the command
    /// goes through its HTTP API while it runs.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// The project secret or an API key (ingest scope to import, export to
    /// export). Prefer the environment variable: a flag shows in `ps`.
    #[arg(long, env = "HEARTH_SECRET", hide_env_values = true, requires = "url")]
    pub(crate) secret: Option<String>,
}

/// `--on` or `--off`, exactly one.
#[derive(Debug, Args)]
pub(crate) struct Switch {
    #[arg(long, conflicts_with = "off", required_unless_present = "off")]
    on: bool,
    #[arg(long)]
    off: bool,
}

impl Switch {
    pub(crate) fn is_on(&self) -> bool {
        self.on && !self.off
    }
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name (with the data directory; not with --url).
    #[arg(long, required_unless_present = "url", conflicts_with = "url")]
    pub(crate) project: Option<String>,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// First day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long = "from")]
    pub(crate) from_date: String,
    /// Last day, YYYY-MM-DD (UTC), inclusive.
    #[arg(long = "to")]
    pub(crate) to_date: String,
    /// Only these event names; repeatable.
    #[arg(long = "event")]
    pub(crate) events: Vec<String>,
    /// Only events for which this Mixpanel expression holds, e.g.
    /// 'properties["plan"] == "pro" and properties["seats"] >= 5'.
    #[arg(long = "where")]
    pub(crate) filter: Option<String>,
    /// Write here instead of standard output (.gz compresses).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Times in milliseconds instead of seconds.
    #[arg(long)]
    pub(crate) time_in_ms: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// About this many events over 90 days (sets the number of users).
    #[arg(long, conflicts_with = "users")]
    pub(crate) events: Option<u64>,
    /// Exactly this many users.
    #[arg(long)]
    pub(crate) users: Option<u64>,
    #[arg(long)]
    pub(crate) days: Option<u32>,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub(crate) start: Option<String>,
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Write events as JSONL here (.gz compresses); `-` for standard output.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Write profile updates ($set) as /engage JSONL here.
    #[arg(long)]
    pub(crate) profiles: Option<PathBuf>,
    /// Load straight into this project of the data directory instead.
    #[arg(long)]
    pub(crate) project: Option<String>,
    #[command(flatten)]
    pub(crate) data: DataArg,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) data: DataArg,
    /// The project's name.
    #[arg(long)]
    pub(crate) project: String,
    /// The report spec (JSON, see docs/reports.md); `-` reads standard input.
    pub(crate) spec: PathBuf,
    /// Output: json (default, as the HTTP API), table or csv.
    #[arg(long, default_value = "json", value_parser = ["json", "table", "csv"])]
    pub(crate) format: String,
}
