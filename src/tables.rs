//! Data tables: GPU models and their aliases, provider regions, instance types, units.
//!
//! The tables live in `tables/` as TOML and CSV, are embedded at compile time and
//! parsed once. Invariant: nothing here guesses. A name that no alias covers is
//! unresolved; a family name is narrowed only by what the source states (form,
//! reported memory within 7%) and otherwise kept as the coarser id.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::TableError;

const GPUS_TOML: &str = include_str!("../tables/gpus.toml");
const REGIONS_TOML: &str = include_str!("../tables/regions.toml");
const INSTANCES_CSV: &str = include_str!("../tables/instances.csv");
const UNITS_TOML: &str = include_str!("../tables/units.toml");
pub(crate) const PROVIDERS_TOML: &str = include_str!("../tables/providers.toml");

/// Relative tolerance when snapping a reported memory size to a known one.
pub const MEMORY_SNAP_TOLERANCE: f64 = 0.07;

/// One canonical GPU model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuModel {
    pub id: String,
    pub vendor: String,
    pub family: String,
    pub memory_gb: f64,
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub china_variant: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Partial {
    family: String,
    #[serde(default)]
    form: Option<String>,
    #[serde(default)]
    memory_gb: Option<f64>,
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NotGpu {
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
}

/// Names that mean one model only within one provider's catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderAlias {
    provider: String,
    model: String,
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpusFile {
    model: Vec<GpuModel>,
    #[serde(default)]
    partial: Vec<Partial>,
    #[serde(default)]
    not_gpu: NotGpu,
    #[serde(default)]
    provider_alias: Vec<ProviderAlias>,
}

/// What an alias points at: a full model, or a partial description to narrow.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Model(usize),
    Partial {
        family: String,
        form: Option<String>,
        memory_gb: Option<f64>,
    },
}

/// The GPU model registry with its alias index.
#[derive(Debug)]
pub struct GpuRegistry {
    models: Vec<GpuModel>,
    aliases: HashMap<String, Target>,
    not_gpu: std::collections::HashSet<String>,
    not_gpu_prefixes: Vec<String>,
    /// (provider, normalised alias) -> model index.
    provider_aliases: HashMap<(String, String), usize>,
}

/// Normalise a GPU name for alias lookup: lowercase; every run of ` -_()/,` becomes
/// one space; a number followed by a `gb` token is joined (`80 GB` == `80GB`).
pub fn normalise_name(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || "-_()/,".contains(c))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t == "gb" {
            if let Some(prev) = out.last_mut() {
                if prev.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    prev.push_str("gb");
                    continue;
                }
            }
        }
        out.push(t.to_string());
    }
    out.join(" ")
}

/// Vendor words some sources put in front of the model name; stripped one at a time
/// when the full name has no alias.
const PREFIXES: &[&str] = &[
    "nvidia ",
    "geforce ",
    "tesla ",
    "amd ",
    "instinct ",
    "radeon ",
];

impl GpuRegistry {
    fn parse(text: &str) -> Result<Self, TableError> {
        let err = |message: String| TableError {
            table: "tables/gpus.toml".into(),
            message,
        };
        let file: GpusFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut aliases: HashMap<String, Target> = HashMap::new();
        let add = |alias: &str, target: Target, aliases: &mut HashMap<String, Target>| {
            let key = normalise_name(alias);
            if key.is_empty() {
                return Err(err(format!("empty alias {alias:?}")));
            }
            match aliases.get(&key) {
                Some(existing) if *existing != target => Err(err(format!(
                    "alias {alias:?} (key {key:?}) maps to two targets: {existing:?} and {target:?}"
                ))),
                _ => {
                    aliases.insert(key, target);
                    Ok(())
                }
            }
        };
        let mut ids = std::collections::HashSet::new();
        for (i, m) in file.model.iter().enumerate() {
            if !ids.insert(m.id.clone()) {
                return Err(err(format!("model id {} listed twice", m.id)));
            }
            add(&m.id, Target::Model(i), &mut aliases)?;
            for a in &m.aliases {
                add(a, Target::Model(i), &mut aliases)?;
            }
        }
        for p in &file.partial {
            if !file.model.iter().any(|m| m.family == p.family) {
                return Err(err(format!("partial names unknown family {}", p.family)));
            }
            let target = Target::Partial {
                family: p.family.clone(),
                form: p.form.clone().filter(|f| !f.is_empty()),
                memory_gb: p.memory_gb,
            };
            for a in &p.aliases {
                add(a, target.clone(), &mut aliases)?;
            }
        }
        let not_gpu: std::collections::HashSet<String> = file
            .not_gpu
            .aliases
            .iter()
            .map(|a| normalise_name(a))
            .collect();
        if let Some(k) = not_gpu.iter().find(|k| aliases.contains_key(*k)) {
            return Err(err(format!(
                "{k:?} is listed both as a GPU alias and as not a GPU"
            )));
        }
        let mut provider_aliases = HashMap::new();
        for pa in &file.provider_alias {
            let i = file
                .model
                .iter()
                .position(|m| m.id == pa.model)
                .ok_or_else(|| {
                    err(format!(
                        "provider_alias for {} names unknown model {}",
                        pa.provider, pa.model
                    ))
                })?;
            for a in &pa.aliases {
                let key = (pa.provider.clone(), normalise_name(a));
                if provider_aliases.insert(key, i).is_some_and(|j| j != i) {
                    return Err(err(format!(
                        "provider alias {a:?} of {} maps to two models",
                        pa.provider
                    )));
                }
            }
        }
        Ok(Self {
            models: file.model,
            aliases,
            provider_aliases,
            not_gpu,
            not_gpu_prefixes: file
                .not_gpu
                .prefixes
                .iter()
                .map(|p| normalise_name(p))
                .collect(),
        })
    }

    /// True for accelerators that are not GPUs (TPUs, Inferentia, FPGAs, ...).
    /// A model as a user types it (canonical id or alias, any case): `Ok(id)`, or
    /// the close candidates (the models a family name covers, or look-alike ids).
    pub fn find_model(&self, input: &str) -> Result<String, Vec<String>> {
        if let Some(m) = self
            .models
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(input))
        {
            return Ok(m.id.clone());
        }
        let key = normalise_name(input);
        let close: Vec<String> = match self.resolve(input, None) {
            Some(id) if self.model(&id).is_some() => return Ok(id),
            // A coarse id (family, form or memory): every model it can be.
            Some(coarse) => {
                let tokens: Vec<String> = coarse.split('-').map(normalise_name).collect();
                self.models
                    .iter()
                    .filter(|m| {
                        let id = normalise_name(&m.id);
                        tokens.iter().all(|t| id.split(' ').any(|p| p == t))
                    })
                    .map(|m| m.id.clone())
                    .collect()
            }
            None => self
                .models
                .iter()
                .filter(|m| {
                    let id = normalise_name(&m.id);
                    id.contains(&key) || strsim::levenshtein(&id, &key) <= 3
                })
                .map(|m| m.id.clone())
                .collect(),
        };
        let mut close = close;
        close.sort();
        Err(close)
    }

    pub fn is_not_gpu(&self, raw: &str) -> bool {
        let key = normalise_name(raw);
        self.not_gpu.contains(&key)
            || self
                .not_gpu_prefixes
                .iter()
                .any(|p| key == *p || key.starts_with(&format!("{p} ")))
    }

    pub fn models(&self) -> &[GpuModel] {
        &self.models
    }

    pub fn model(&self, id: &str) -> Option<&GpuModel> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Every (normalised alias, target id or partial description) pair, for tests.
    pub fn alias_count(&self) -> usize {
        self.aliases.len()
    }

    fn lookup(&self, raw: &str) -> Option<&Target> {
        let mut key = normalise_name(raw);
        loop {
            if let Some(t) = self.aliases.get(&key) {
                return Some(t);
            }
            let stripped = PREFIXES
                .iter()
                .find_map(|p| key.strip_prefix(p).map(str::to_string))?;
            key = stripped;
        }
    }

    /// Resolve a raw GPU name (with the memory the source reports, if any) to a
    /// canonical id, or to the honest coarser id when the source is not specific.
    /// `None` when no alias covers the name.
    pub fn resolve(&self, raw: &str, reported_memory_gb: Option<f64>) -> Option<String> {
        match self.lookup(raw)? {
            Target::Model(i) => {
                let named = &self.models[*i];
                let by_memory = reported_memory_gb.and_then(|mem| self.sibling(named, mem));
                Some(by_memory.unwrap_or_else(|| named.id.clone()))
            }
            Target::Partial {
                family,
                form,
                memory_gb,
            } => Some(self.narrow(family, form.as_deref(), memory_gb.or(reported_memory_gb))),
        }
    }

    /// The model of `named`'s family and form that `mem` fits when `named` does not:
    /// the source's reported memory outranks the memory a full name implies, so an
    /// "RTX 4090" reported with 48 GB is the 48 GB board. The family and form are
    /// narrowed by the memory as a partial name's are ([`GpuRegistry::narrow`]);
    /// `None` when `mem` fits `named`, or when narrowing ends at a coarser id (no
    /// model fits, or several): the name is then kept.
    fn sibling(&self, named: &GpuModel, mem: f64) -> Option<String> {
        if fits(named, mem) {
            return None;
        }
        let id = self.narrow(&named.family, Some(&named.form), Some(mem));
        self.model(&id).is_some().then_some(id)
    }

    /// Like [`GpuRegistry::resolve`], but a name that means one model within this
    /// provider's catalogue (`[[provider_alias]]`) resolves to that model first.
    pub fn resolve_for(
        &self,
        provider: &str,
        raw: &str,
        reported_memory_gb: Option<f64>,
    ) -> Option<String> {
        match self
            .provider_aliases
            .get(&(provider.to_string(), normalise_name(raw)))
        {
            Some(i) => Some(self.models[*i].id.clone()),
            None => self.resolve(raw, reported_memory_gb),
        }
    }

    /// Narrow a family (and form, memory when known) to one model, or build the coarser id.
    pub fn narrow(&self, family: &str, form: Option<&str>, memory_gb: Option<f64>) -> String {
        let mut candidates: Vec<&GpuModel> = self
            .models
            .iter()
            .filter(|m| m.family == family && form.is_none_or(|f| m.form == f))
            .collect();
        let mut known_mem = None;
        if let Some(mem) = memory_gb.filter(|m| *m > 0.0) {
            let within: Vec<&GpuModel> = candidates
                .iter()
                .copied()
                .filter(|m| fits(m, mem))
                .collect();
            if let Some(nearest) = within
                .iter()
                .map(|m| m.memory_gb)
                .min_by(|a, b| (a - mem).abs().total_cmp(&(b - mem).abs()))
            {
                candidates = within
                    .into_iter()
                    .filter(|m| m.memory_gb == nearest)
                    .collect();
                known_mem = Some(nearest);
            }
        }
        if candidates.len() == 1 {
            return candidates[0].id.clone();
        }
        let mut id = family.to_string();
        let forms: Vec<&str> = {
            let mut f: Vec<&str> = candidates.iter().map(|m| m.form.as_str()).collect();
            f.dedup();
            f
        };
        if let Some(f) = form.or(if forms.len() == 1 && !forms[0].is_empty() {
            Some(forms[0])
        } else {
            None
        }) {
            id.push('-');
            id.push_str(f);
        }
        if let Some(m) = known_mem {
            id.push_str(&format!("-{}GB", fmt_mem(m)));
        }
        id
    }
}

/// `mem` GB is model `m`'s memory, within [`MEMORY_SNAP_TOLERANCE`].
fn fits(m: &GpuModel, mem: f64) -> bool {
    ((m.memory_gb - mem) / m.memory_gb).abs() <= MEMORY_SNAP_TOLERANCE
}

fn fmt_mem(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{}", m as i64)
    } else {
        format!("{m}")
    }
}

/// Instance type to GPU model and count, per provider.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceGpu {
    pub gpu_model: String,
    pub gpu_count: f64,
}

#[derive(Debug, Deserialize)]
struct InstanceRow {
    provider: String,
    instance_type: String,
    gpu_model: String,
    gpu_count: f64,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    period_hours: BTreeMap<String, f64>,
    scale: BTreeMap<String, f64>,
    bloc: BTreeMap<String, String>,
}

/// All tables, parsed once.
#[derive(Debug)]
pub struct Tables {
    pub gpus: GpuRegistry,
    /// provider -> region -> country
    regions: HashMap<String, HashMap<String, String>>,
    instances: HashMap<(String, String), InstanceGpu>,
    period_hours: BTreeMap<String, f64>,
    scale: BTreeMap<String, f64>,
    bloc: BTreeMap<String, String>,
    /// Peer source's provider name (normalised) -> gpurent provider id.
    peer_providers: HashMap<String, String>,
}

/// The `[peer]` table of `tables/providers.toml` (its other tables are read by
/// [`Providers`], which rejects unknown keys).
#[derive(Debug, Deserialize)]
struct PeerNamesFile {
    peer: BTreeMap<String, String>,
}

/// A peer's provider name as a lookup key and default id: lowercased, trimmed, each
/// run of spaces as `_`.
fn provider_key(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

impl Tables {
    /// The tables embedded in the binary. Panics only if the embedded tables are
    /// invalid, which the test suite rules out.
    pub fn embedded() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(|| {
            Tables::parse(GPUS_TOML, REGIONS_TOML, INSTANCES_CSV, UNITS_TOML)
                .expect("embedded tables are valid (checked by tests)")
        })
    }

    /// The tables read at run time from `dir` (`gpus.toml`, `regions.toml`,
    /// `instances.csv`, `units.toml`) instead of the embedded copy, checked the same
    /// way; errors name the file under `dir`.
    pub fn load_dir(dir: &std::path::Path) -> Result<Tables, TableError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| TableError {
                table: dir.join(name).display().to_string(),
                message: format!("cannot read: {e}"),
            })
        };
        let (g, r, i, u) = (
            read("gpus.toml")?,
            read("regions.toml")?,
            read("instances.csv")?,
            read("units.toml")?,
        );
        Tables::parse(&g, &r, &i, &u).map_err(|e| TableError {
            table: match e.table.strip_prefix("tables/") {
                Some(name) => dir.join(name).display().to_string(),
                None => e.table,
            },
            message: e.message,
        })
    }

    pub fn parse(
        gpus: &str,
        regions: &str,
        instances: &str,
        units: &str,
    ) -> Result<Self, TableError> {
        let gpus = GpuRegistry::parse(gpus)?;
        let regions: HashMap<String, HashMap<String, String>> =
            toml::from_str(regions).map_err(|e| TableError {
                table: "tables/regions.toml".into(),
                message: e.to_string(),
            })?;
        for (provider, map) in &regions {
            for (region, country) in map {
                if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(TableError {
                        table: "tables/regions.toml".into(),
                        message: format!(
                            "[{provider}] {region} = {country:?} is not an ISO 3166-1 alpha-2 code"
                        ),
                    });
                }
            }
        }
        let mut inst = HashMap::new();
        let mut rdr = csv::Reader::from_reader(instances.as_bytes());
        for (line, row) in rdr.deserialize::<InstanceRow>().enumerate() {
            let err = |message: String| TableError {
                table: "tables/instances.csv".into(),
                message: format!("row {}: {message}", line + 2),
            };
            let row = row.map_err(|e| err(e.to_string()))?;
            if gpus.model(&row.gpu_model).is_none() {
                return Err(err(format!("unknown gpu_model {}", row.gpu_model)));
            }
            if row.gpu_count <= 0.0 {
                return Err(err(format!("gpu_count {} is not positive", row.gpu_count)));
            }
            let key = (row.provider.clone(), row.instance_type.clone());
            if inst.contains_key(&key) {
                return Err(err(format!(
                    "{} {} listed twice",
                    row.provider, row.instance_type
                )));
            }
            inst.insert(
                key,
                InstanceGpu {
                    gpu_model: row.gpu_model,
                    gpu_count: row.gpu_count,
                },
            );
        }
        let units: UnitsFile = toml::from_str(units).map_err(|e| TableError {
            table: "tables/units.toml".into(),
            message: e.to_string(),
        })?;
        let providers: PeerNamesFile = toml::from_str(PROVIDERS_TOML).map_err(|e| TableError {
            table: "tables/providers.toml".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            peer_providers: providers
                .peer
                .into_iter()
                .map(|(k, v)| (provider_key(&k), v))
                .collect(),
            gpus,
            regions,
            instances: inst,
            period_hours: units.period_hours,
            scale: units.scale,
            bloc: units.bloc,
        })
    }

    /// Country of a provider's region, if the region table knows it.
    pub fn country(&self, provider: &str, region: &str) -> Option<&str> {
        self.regions
            .get(provider)
            .and_then(|m| m.get(region))
            .map(String::as_str)
    }

    /// True when tables/regions.toml has a table for this provider.
    pub fn knows_provider(&self, provider: &str) -> bool {
        self.regions.contains_key(provider)
    }

    /// gpurent's id for a provider as a peer source names it (tables/providers.toml);
    /// an unlisted name is kept, lowercased, with spaces as `_`.
    pub fn provider_id(&self, peer_name: &str) -> String {
        let key = provider_key(peer_name);
        self.peer_providers.get(&key).cloned().unwrap_or(key)
    }

    /// GPU model and count of a provider's instance type.
    pub fn instance(&self, provider: &str, instance_type: &str) -> Option<&InstanceGpu> {
        self.instances
            .get(&(provider.to_string(), instance_type.to_string()))
    }

    /// Hours in a named period (`hour`, `month`, ...).
    pub fn period_hours(&self, period: &str) -> Option<f64> {
        self.period_hours.get(period).copied()
    }

    /// Multiplier of a named scale (`unit`, `cents`, ...).
    pub fn scale(&self, scale: &str) -> Option<f64> {
        self.scale.get(scale).copied()
    }

    /// Bloc of a country: `CN`, `US` or `OTHER`.
    pub fn bloc(&self, country: Option<&str>) -> &str {
        country
            .and_then(|c| self.bloc.get(c))
            .map(String::as_str)
            .unwrap_or("OTHER")
    }
}

/// Segments a provider can belong to (`tables/providers.toml`), plus `unknown`.
pub const SEGMENTS: [&str; 4] = ["hyperscaler", "gpu_cloud", "marketplace", "unknown"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    segment: String,
    valid_hours: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderDefaults {
    list_price_hours: f64,
    segment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    defaults: ProviderDefaults,
    providers: BTreeMap<String, ProviderEntry>,
    /// Peers' provider names, read by [`Tables`].
    #[serde(default, rename = "peer")]
    _peer: BTreeMap<String, String>,
}

/// Provider segments and price validity (`tables/providers.toml`).
#[derive(Debug)]
pub struct Providers {
    defaults: ProviderDefaults,
    providers: BTreeMap<String, ProviderEntry>,
}

impl Providers {
    /// The embedded table. Panics only if it is invalid, which the tests rule out.
    pub fn embedded() -> &'static Providers {
        static P: OnceLock<Providers> = OnceLock::new();
        P.get_or_init(|| {
            Providers::parse(PROVIDERS_TOML).expect("embedded providers.toml is valid")
        })
    }

    pub fn parse(text: &str) -> Result<Self, TableError> {
        let err = |message: String| TableError {
            table: "tables/providers.toml".into(),
            message,
        };
        let f: ProvidersFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let hours_ok = |h: f64| h.is_finite() && h > 0.0;
        if !hours_ok(f.defaults.list_price_hours) {
            return Err(err("defaults.list_price_hours must be positive".into()));
        }
        for (name, e) in &f.providers {
            if !SEGMENTS.contains(&e.segment.as_str()) {
                return Err(err(format!("{name}: unknown segment {:?}", e.segment)));
            }
            if e.valid_hours.is_some_and(|h| !hours_ok(h)) {
                return Err(err(format!("{name}: valid_hours must be positive")));
            }
        }
        Ok(Self {
            defaults: f.defaults,
            providers: f.providers,
        })
    }

    fn entry(&self, provider: &str) -> Option<&ProviderEntry> {
        self.providers.get(provider).or_else(|| {
            provider
                .split_once(':')
                .and_then(|(agg, _)| self.providers.get(agg))
        })
    }

    /// The provider's segment (`unknown` when the table does not list it).
    pub fn segment(&self, provider: &str) -> &str {
        self.entry(provider)
            .map(|e| e.segment.as_str())
            .unwrap_or(self.defaults.segment.as_str())
    }

    /// Hours an observed price of the provider stands when nothing supersedes it.
    pub fn valid_hours(&self, provider: &str) -> f64 {
        self.entry(provider)
            .and_then(|e| e.valid_hours)
            .unwrap_or(self.defaults.list_price_hours)
    }

    /// The longest validity of any provider: how far back a price can still stand.
    pub fn max_valid_hours(&self) -> f64 {
        self.providers
            .values()
            .filter_map(|e| e.valid_hours)
            .fold(self.defaults.list_price_hours, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_norm(input: &str, expected: &str) {
        assert_eq!(normalise_name(input), expected, "normalise_name({input:?})");
    }

    fn check_find(input: &str, expected: Result<&str, &[&str]>) {
        let got = Tables::embedded().gpus.find_model(input);
        match expected {
            Ok(id) => assert_eq!(got, Ok(id.to_string()), "{input}"),
            // Every listed candidate is among the close matches offered.
            Err(some) => {
                let close = got.expect_err(input);
                for s in some {
                    assert!(close.iter().any(|c| c == s), "{input}: {close:?} lacks {s}");
                }
            }
        }
    }

    #[test]
    fn models_as_users_type_them() {
        check_find("H100-SXM-80GB", Ok("H100-SXM-80GB"));
        check_find("h100-sxm-80gb", Ok("H100-SXM-80GB"));
        check_find("NVIDIA H100 SXM5", Ok("H100-SXM-80GB"));
        check_find("H100", Err(&["H100-SXM-80GB", "H100-PCIE-80GB"]));
        check_find("H100-SXM-80G", Err(&["H100-SXM-80GB"]));
        check_find("Quantum GPU", Err(&[]));
    }

    #[test]
    fn name_normalisation() {
        for (input, expected) in [
            ("H100 (80 GB SXM5)", "h100 80gb sxm5"),
            ("NVIDIA A100-SXM4-80GB", "nvidia a100 sxm4 80gb"),
            ("  RTX_4090  ", "rtx 4090"),
            ("A100-80GB", "a100 80gb"),
            ("nvidia-h100-80gb", "nvidia h100 80gb"),
        ] {
            check_norm(input, expected);
        }
    }

    #[test]
    fn embedded_tables_load() {
        let t = Tables::embedded();
        assert!(t.gpus.models().len() > 30);
        assert_eq!(t.bloc(Some("CN")), "CN");
        assert_eq!(t.bloc(Some("HK")), "OTHER");
        assert_eq!(t.bloc(None), "OTHER");
        assert_eq!(t.period_hours("month"), Some(730.0));
    }

    fn check_provider(peer_name: &str, expected: &str) {
        assert_eq!(
            Tables::embedded().provider_id(peer_name),
            expected,
            "{peer_name}"
        );
    }

    #[test]
    fn peer_provider_ids() {
        for (name, id) in [
            ("lambdalabs", "lambda"),
            ("vast.ai", "vastai"),
            ("Oracle", "oci"),
            ("aws", "aws"),
            ("massed compute", "massed_compute"),
            (" Build  AI ", "build_ai"),
            ("AWS China (Ningxia, operated by NWCD)", "aws"),
            ("AWS China (Beijing local zone, Sinnet)", "aws"),
            ("优云智算 Compshare (UCloud)", "compshare"),
        ] {
            check_provider(name, id);
        }
    }

    #[test]
    fn provider_segments_and_validity() {
        let p = Providers::embedded();
        let check = |provider: &str, expected: (&str, f64)| {
            assert_eq!(
                (p.segment(provider), p.valid_hours(provider)),
                expected,
                "{provider}"
            );
        };
        check("aws", ("hyperscaler", 1080.0));
        check("aliyun", ("hyperscaler", 1080.0));
        check("lambda", ("gpu_cloud", 1080.0));
        check("vastai", ("marketplace", 6.0));
        check("shadeform:lambda", ("marketplace", 6.0));
        check("nobody", ("unknown", 1080.0));
        assert!(Providers::parse("[defaults]\nlist_price_hours = 1\nsegment = \"unknown\"\n[providers]\nx = { segment = \"cloud\" }\n").is_err());
    }

    #[test]
    fn conflicting_alias_is_an_error() {
        let gpus = r#"
[[model]]
id = "H100-SXM-80GB"
vendor = "NVIDIA"
family = "H100"
memory_gb = 80
form = "SXM"
aliases = ["H100 SXM"]
[[model]]
id = "H800-SXM-80GB"
vendor = "NVIDIA"
family = "H800"
memory_gb = 80
form = "SXM"
china_variant = true
aliases = ["h100-sxm"]
"#;
        let e = GpuRegistry::parse(gpus).unwrap_err();
        assert!(e.message.contains("two targets"), "{e}");
    }
}
