//! cqrs-es 0.5 and postgres-es 0.5 measured for es-tests' compare bench, one measurement per
//! run: `bench-peers <measurement> --option value ...` prints one JSON object on one line,
//! `{"value": ...}` plus whatever else the measurement reports, and exits 0; on failure it
//! prints the error on stderr and exits 1.
//!
//! The compare bench (tests/benches/compare) builds this binary and runs it once per round,
//! between its own measurements, so the figures still alternate ours and theirs. Each
//! measurement times only the work it names: start-up, connecting and warming the pool stay
//! outside the timed part, as they did when the peers ran inside the bench's process.

mod account;
mod memory;
mod postgres;

use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;

/// The same allocator wrapper as the bench's process (which counts heap bytes for figure 7),
/// so both frameworks pay the same per-allocation cost.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: bench-peers <measurement> [--option value]...

measurements (times in the unit named; each prints one JSON line):
  memory-many    --accounts N --commands N          cmd/s, MemStore, round-robin over accounts
  memory-long    --length N --measured N            µs per command on one stream of N events
  pg-setup       --url URL --schema S               creates postgres-es's tables in schema S
  pg-drop        --url URL --schema S               drops schema S
  pg-throughput  --url URL --schema S --pool N --accounts N --commands N --tasks N --ids PREFIX
                                                    cmd/s of deposits, tasks in parallel
  pg-append-many --url URL --schema S --pool N --id ID --count N
                                                    ms for one command appending N events
  pg-fill        --url URL --schema S --pool N --id ID --length N --snapshot-every N
                                                    appends N events to ID, 1,000 per command
  pg-load        --url URL --schema S --pool N --id ID --snapshot-every N
                                                    ms to load ID (0: no snapshots), and its balance
  pg-disk        --url URL --schema S               bytes on disk per stored event, and rows";

/// `--name value` pairs after the measurement's name.
#[derive(Debug)]
struct Options(HashMap<String, String>);

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut options = HashMap::new();
        while let Some(arg) = args.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("expected `--option value`, found `{arg}`"))?;
            let value = args
                .next()
                .ok_or_else(|| format!("option `--{name}` needs a value"))?;
            options.insert(name.to_owned(), value);
        }
        Ok(Options(options))
    }

    fn get<T>(&self, name: &str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let value = self
            .0
            .get(name)
            .ok_or_else(|| format!("missing option `--{name}`"))?;
        value
            .parse()
            .map_err(|error| format!("option `--{name} {value}`: {error}").into())
    }
}

async fn run(measurement: &str, options: &Options) -> Result<serde_json::Value, Error> {
    let value = |value: f64| serde_json::json!({ "value": value });
    Ok(match measurement {
        "memory-many" => {
            value(memory::many(options.get("accounts")?, options.get("commands")?).await?)
        }
        "memory-long" => {
            value(memory::long(options.get("length")?, options.get("measured")?).await?)
        }
        "pg-setup" => {
            postgres::setup(&options.get::<String>("url")?, &schema(options)?).await?;
            serde_json::json!({})
        }
        "pg-drop" => {
            postgres::drop_schema(&options.get::<String>("url")?, &schema(options)?).await?;
            serde_json::json!({})
        }
        "pg-disk" => {
            let (bytes, rows) =
                postgres::disk(&options.get::<String>("url")?, &schema(options)?).await?;
            serde_json::json!({ "value": bytes, "rows": rows })
        }
        "pg-throughput" | "pg-append-many" | "pg-fill" | "pg-load" => {
            let pg = postgres::Pg::connect(
                &options.get::<String>("url")?,
                &schema(options)?,
                options.get("pool")?,
            )
            .await?;
            let result = run_on_pool(&pg, measurement, options).await;
            pg.close().await;
            result?
        }
        _ => return Err(format!("unknown measurement `{measurement}`\n\n{USAGE}").into()),
    })
}

/// The measurements that run on a pool of the bench's size.
async fn run_on_pool(
    pg: &postgres::Pg,
    measurement: &str,
    options: &Options,
) -> Result<serde_json::Value, Error> {
    let value = |value: f64| serde_json::json!({ "value": value });
    Ok(match measurement {
        "pg-throughput" => value(
            pg.throughput(
                &options.get::<String>("ids")?,
                options.get("accounts")?,
                options.get("commands")?,
                options.get("tasks")?,
            )
            .await?,
        ),
        "pg-append-many" => value(
            pg.append_many(&options.get::<String>("id")?, options.get("count")?)
                .await?,
        ),
        "pg-fill" => {
            pg.fill(
                &options.get::<String>("id")?,
                options.get("length")?,
                options.get("snapshot-every")?,
            )
            .await?;
            serde_json::json!({})
        }
        "pg-load" => {
            let (ms, balance) = pg
                .load(
                    &options.get::<String>("id")?,
                    options.get("snapshot-every")?,
                )
                .await?;
            serde_json::json!({ "value": ms, "balance": balance })
        }
        _ => return Err(format!("`{measurement}` does not run on a pool").into()),
    })
}

/// The schema option: interpolated into SQL, so only lowercase letters, digits and `_`.
fn schema(options: &Options) -> Result<String, Error> {
    let schema: String = options.get("schema")?;
    let plain = !schema.is_empty()
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(schema)
    } else {
        Err(format!("schema `{schema}`: use lowercase letters, digits and `_` only").into())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(measurement) = args.next().filter(|arg| !arg.starts_with('-')) else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let result = Options::parse(args).and_then(|options| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(&measurement, &options))
    });
    match result {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench-peers {measurement}: {error}");
            ExitCode::FAILURE
        }
    }
}
