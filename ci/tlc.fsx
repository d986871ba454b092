/// The one TLC runner (run through ci/tlc.sh; usage below): parses every module with SANY, runs
/// the models of ci/tlc-models.fsx and the spec mutations of spec/mutations/*.mutations, and makes
/// and checks the conformance fixtures under spec/fixtures/<set>/.
///
/// Fixtures: spec/fixtures/<set>/manifest.json names every fixture file with the SHA-256 of its
/// uncompressed content, and every spec/ file TLC read to make it (modules and .cfg, line endings
/// not counted). Those source hashes alone decide freshness. The TLC version line is recorded for
/// information only: a default run regenerates the fixtures and compares content hashes when its
/// TLC has the same revision, and only reports a difference when the revision differs (another
/// TLC may number states or simulate differently), whatever the build stamp.
#load "tlc-models.fsx"

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Security.Cryptography
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open TlcModels

let usage =
    """usage: bash ci/tlc.sh [--only NAME[,NAME...]] [--fixtures [SET...] | --check]

  (no option)       SANY on every module, every model (TLC_LONG=1: the long ones too), the fixture
                    rows (regenerated into a temporary directory and compared), the freshness of
                    every fixture set and the spec mutations; one line per suite
                    "tlc-<suite>: N passed, N failed", then "tlc: N passed, N failed"
  --only NAMES      only the models, sets or mutations so named ("replication", "MCLCR3",
                    "sany", "mutations", "lcr-replace-twice", ...)
  --fixtures [SET]  regenerate spec/fixtures/<SET>/ (all sets when none is named): commit the result
  --check           freshness only: every fixture set's sources still have the hashes in its
                    manifest (needs no TLC)

  TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar or ~/.cache/tlaplus/tla2tools.jar is the jar; without
  one (or without java) TLC runs are SKIPPED with a notice, and so are the rows whose modules
  need a standard module the jar lacks (v1.7.4, hosted CI's: Json, TLCExt). TLC_WORKERS (default 2) workers for
  exhaustive checks; TLC_LONG=1 also the long models and mutations; TLC_BUDGET_SCALE multiplies
  every model's time budget."""

let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))
let specDir = Path.Combine(root, "spec")
let environment name = Environment.GetEnvironmentVariable name |> Option.ofObj |> Option.filter ((<>) "")
let runLong = environment "TLC_LONG" = Some "1"
let workers = environment "TLC_WORKERS" |> Option.defaultValue "2"
let budgetScale = environment "TLC_BUDGET_SCALE" |> Option.map float |> Option.defaultValue 1.0

// ---------------------------------------------------------------------------------------------
// Finding and running TLC.

let javaFound =
    (defaultArg (environment "PATH") "").Split(Path.PathSeparator)
    |> Array.exists (fun directory -> directory <> "" && File.Exists(Path.Combine(directory, "java")))

/// The jar, when there is one and java to run it.
let jar =
    [ environment "TLA2TOOLS_JAR"
      Some "/opt/tlaplus/tla2tools.jar"
      Some(Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache/tlaplus/tla2tools.jar")) ]
    |> List.choose id
    |> List.tryFind File.Exists
    |> Option.filter (fun _ -> javaFound)
    |> Option.map Path.GetFullPath

let newDirectory () =
    let directory = Path.Combine(Path.GetTempPath(), $"tlc-{Guid.NewGuid():N}")
    Directory.CreateDirectory directory |> ignore
    directory

type Run = { ExitCode: int option; Output: string; Seconds: float }

/// Runs java with the arguments in `directory`; kills it after `budgetSeconds` (ExitCode None).
let java (directory: string) (budgetSeconds: int) (arguments: string list) : Run =
    let start = ProcessStartInfo("java", WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true)
    for argument in [ "-XX:+UseParallelGC"; "-Xss4m"; "-cp"; jar.Value ] @ arguments do
        start.ArgumentList.Add argument
    let output = StringBuilder()
    let append (line: string | null) = match line with null -> () | line -> lock output (fun () -> output.AppendLine line |> ignore)
    use proc = new Process(StartInfo = start)
    proc.OutputDataReceived.Add(fun data -> append data.Data)
    proc.ErrorDataReceived.Add(fun data -> append data.Data)
    let watch = Stopwatch.StartNew()
    proc.Start() |> ignore
    proc.BeginOutputReadLine()
    proc.BeginErrorReadLine()
    let finished = proc.WaitForExit(budgetSeconds * 1000)
    if not finished then proc.Kill true
    proc.WaitForExit()
    { ExitCode = (if finished then Some proc.ExitCode else None); Output = lock output (fun () -> output.ToString()); Seconds = watch.Elapsed.TotalSeconds }

/// TLC run with these arguments on a module that does not exist: its banner and option errors.
let probe (arguments: string list) =
    let directory = newDirectory ()
    let run = java directory 60 ([ "tlc2.TLC"; "-metadir"; Path.Combine(directory, "states") ] @ arguments @ [ "NoSuchModule" ])
    Directory.Delete(directory, true)
    run.Output

/// "TLC2 Version 2026.04.29.164809 (rev: cc6b616)", "TLC2 Version 2.19 of 08 August 2024 (rev:
/// 5a47802)" (v1.7.4): information only.
let tlcVersion =
    lazy
        (let found = Regex.Match(probe [], @"TLC2 Version[^\r\n]*")
         if found.Success then found.Value else "TLC2 Version unknown")

/// TLC 1.8 writes a SpecTE module for every counterexample unless told not to; v1.7.4 writes
/// none and rejects the option.
let specTEOption =
    lazy (if (probe [ "-noGenerateSpecTE" ]).Contains "unrecognized option" then [] else [ "-noGenerateSpecTE" ])

let tlc (directory: string) (budgetSeconds: int) (arguments: string list) : Run =
    let metadir = Path.Combine(directory, "states")
    java directory budgetSeconds ([ "tlc2.TLC"; "-metadir"; metadir ] @ specTEOption.Value @ [ "-cleanup" ] @ arguments)

/// The standard modules this TLC has (its jar's tla2sany/StandardModules/). v1.7.4, the release
/// hosted CI pins, has neither Json nor TLCExt: the rows whose modules extend them are SKIPPED.
let standardModules =
    lazy
        (use zip = ZipFile.OpenRead jar.Value
         zip.Entries
         |> Seq.filter (fun entry -> entry.FullName.StartsWith "tla2sany/StandardModules/" && entry.Name.EndsWith ".tla")
         |> Seq.map (fun entry -> Path.GetFileNameWithoutExtension entry.Name)
         |> Set.ofSeq)

/// The modules a spec/ module EXTENDS or INSTANCEs, directly or through other spec/ modules,
/// that are neither in spec/ nor standard modules of this TLC.
let missingModules (moduleName: string) : string list =
    let importsOf (name: string) =
        let path = Path.Combine(specDir, name + ".tla")
        if not (File.Exists path) then []
        else
            let text = Regex.Replace(File.ReadAllText path, @"\(\*[\s\S]*?\*\)|\\\*[^\n]*", "")
            [ for found in Regex.Matches(text, @"\bEXTENDS\s+(\w+(?:\s*,\s*\w+)*)") do
                  yield! found.Groups[1].Value.Split(',') |> Array.map (fun name -> name.Trim())
              for found in Regex.Matches(text, @"\bINSTANCE\s+(\w+)") -> found.Groups[1].Value ]
    let rec visit (seen: Set<string>) (name: string) =
        if seen.Contains name then seen else importsOf name |> List.fold visit (seen.Add name)
    visit Set.empty moduleName
    |> Set.filter (fun name -> not (File.Exists(Path.Combine(specDir, name + ".tla"))) && not (standardModules.Value.Contains name))
    |> Set.toList

/// Why this TLC cannot run a row, if it cannot.
let unsupported (moduleName: string) : string option =
    match missingModules moduleName with
    | [] -> None
    | missing ->
        let names = String.Join(", ", missing)
        Some $"this TLC ({tlcVersion.Value}) has no standard module {names}"

let revisionOf (version: string) =
    let found = Regex.Match(version, @"\(rev: ([0-9a-f]+)\)")
    if found.Success then Some found.Groups[1].Value else None

// ---------------------------------------------------------------------------------------------
// Results.

type Tally() =
    member val Passed = 0 with get, set
    member val Failed = 0 with get, set
    member this.Pass(line: string) = this.Passed <- this.Passed + 1; printfn "  PASS  %s" line
    member this.Fail(line: string) = this.Failed <- this.Failed + 1; printfn "  FAIL  %s" line
    member val Skipped = 0 with get, set
    /// Not run, never counted as passed: a long row without TLC_LONG=1, or a row this TLC cannot run.
    member this.Skip(line: string) = this.Skipped <- this.Skipped + 1; printfn "  SKIP  %s" line

let total = Tally()
let suiteLine (suite: string) (tally: Tally) =
    printfn "tlc-%s: %d passed, %d failed, %d skipped" suite tally.Passed tally.Failed tally.Skipped
    total.Passed <- total.Passed + tally.Passed
    total.Failed <- total.Failed + tally.Failed
    total.Skipped <- total.Skipped + tally.Skipped

let lastNumber (pattern: string) (output: string) =
    let found = Regex.Matches(output, pattern)
    if found.Count = 0 then "-" else found[found.Count - 1].Groups[1].Value

let violations (output: string) =
    [ for found in Regex.Matches(output, @"(?:Temporal property|Invariant|Action property|Property) (\w+) (?:is|was) violated") -> found.Groups[1].Value ]
    @ (if output.Contains "Deadlock reached" then [ "Deadlock" ] else [])

/// The PROPERTY names of a model's .cfg.
let propertiesOf (config: string) : string list =
    let path = Path.Combine(specDir, config + ".cfg")
    let keywords = set [ "CONSTANT"; "CONSTANTS"; "INIT"; "NEXT"; "SPECIFICATION"; "INVARIANT"; "INVARIANTS"; "PROPERTY"; "PROPERTIES"
                         "CHECK_DEADLOCK"; "SYMMETRY"; "VIEW"; "CONSTRAINT"; "CONSTRAINTS"; "ACTION_CONSTRAINT"; "ACTION_CONSTRAINTS"; "ALIAS"; "POSTCONDITION" ]
    if not (File.Exists path) then []
    else
        let words = Regex.Replace(File.ReadAllText path, @"\\\*[^\n]*", "").Split([| ' '; '\t'; '\r'; '\n' |], StringSplitOptions.RemoveEmptyEntries)
        [ let mutable inProperties = false
          for word in words do
              if keywords.Contains word then inProperties <- (word = "PROPERTY" || word = "PROPERTIES")
              elif inProperties then word ]

/// TLC v1.7.4 reports a liveness counterexample as "Temporal properties were violated." without
/// naming the property (TLC 1.8 names it).
let unnamedTemporalViolation (output: string) = output.Contains "Temporal properties were violated."

let describe (expect: Expect) =
    match expect with
    | Holds -> "holds"
    | Violates properties -> "violates " + String.Join(" | ", properties)

/// Whether a run met its expectation, and what it found.
let judge (model: Model) (run: Run) : bool * string =
    let found = violations run.Output
    match run.ExitCode, model.Expect with
    | None, _ -> false, $"TIME-OUT after {run.Seconds:F0} s (expected: {describe model.Expect})"
    | Some 0, Holds -> true, "holds"
    | Some code, Holds -> false, "UNEXPECTED: " + (if found.IsEmpty then sprintf "exit %d" code else found.Head + " violated")
    | Some code, Violates expected when code <> 0 && found |> List.exists (fun p -> List.contains p expected) ->
        true, $"violates {found |> List.find (fun p -> List.contains p expected)} (expected)"
    | Some code, Violates expected when
        code <> 0 && found.IsEmpty && unnamedTemporalViolation run.Output
        && expected |> List.exists (fun p -> List.contains p (propertiesOf model.Config)) ->
        true, $"violates a temporal property this TLC does not name (expected: {describe model.Expect}, a PROPERTY of the model)"
    | Some 0, Violates _ -> false, $"NOT FOUND: the model holds (expected: {describe model.Expect})"
    | Some code, Violates _ ->
        let what = if found.IsEmpty then sprintf "TLC error, exit %d" code else found.Head + " violated"
        false, $"WRONG RESULT: {what} (expected: {describe model.Expect})"

let showTail (output: string) =
    output.Split('\n')
    |> Array.filter (fun line -> not (Regex.IsMatch(line, @"^(Parsing|Semantic processing|Linting|Progress|Starting|Finished|Checking)")))
    |> fun lines -> lines[max 0 (lines.Length - 30) ..]
    |> Array.iter (fun line -> printfn "        %s" (line.TrimEnd()))

let modeName (mode: Mode) =
    match mode with
    | Check -> "check"
    | Simulate _ -> "simulate"
    | Graph -> "graph"
    | Traces _ -> "traces"

let report (tally: Tally) (name: string) (mode: string) (model: Model) (run: Run) : bool =
    let ok, result = judge model run
    let states =
        match lastNumber @"(\d+) distinct states found" run.Output with
        | "-" -> lastNumber @"The number of states generated: (\d+)" run.Output
        | states -> states
    let depth =
        match lastNumber @"depth of the complete state graph search is (\d+)" run.Output with
        | "-" -> lastNumber @"The maximum length of traces generated: (\d+)" run.Output
        | depth -> depth
    let line = sprintf "%-34s %-9s %11s %6s %7.1f/%-5d %s" name mode states depth run.Seconds model.BudgetSeconds result
    if ok then tally.Pass line
    else
        tally.Fail line
        showTail run.Output
    ok

let header () = printfn "        %-34s %-9s %11s %6s %13s %s" "model" "mode" "distinct" "depth" "seconds/budget" "result"

// ---------------------------------------------------------------------------------------------
// SANY.

/// One JVM parses every module; its output has one part per module, each opening with SANY's banner.
let sany (tally: Tally) =
    let all = Directory.GetFiles(specDir, "*.tla") |> Array.sort |> Array.map Path.GetFileName |> List.ofArray
    let names = [ for name in all do
                      match unsupported (Path.GetFileNameWithoutExtension name) with
                      | Some reason -> tally.Skip $"sany {name}: {reason}"
                      | None -> name ]
    let run = java specDir 600 ("tla2sany.SANY" :: names)
    let parts = Regex.Split(run.Output, @"(?m)^\*+ SANY2 Version.*$") |> Array.skip 1
    let mutable flagged = false
    for index, name in List.indexed names do
        let part = if index < parts.Length then Some parts[index] else None
        match part with
        | Some part when not (Regex.IsMatch(part, @"\*\*\* Errors|Semantic errors|Fatal errors|Parse Error|Lexical error|Could not")) ->
            tally.Pass $"sany {name}"
        | Some part ->
            flagged <- true
            tally.Fail $"sany {name}"
            showTail part
        | None when flagged -> printfn "  SKIP  sany %s (SANY stops at the first module in error)" name
        | None ->
            flagged <- true
            tally.Fail $"sany {name}"
            showTail run.Output
    if run.ExitCode <> Some 0 && not flagged then
        tally.Fail $"sany: exit {run.ExitCode}"
        showTail run.Output

// ---------------------------------------------------------------------------------------------
// Models.

let simulationArguments (mode: Mode) (seed: int) (fingerprintIndex: int) =
    match mode with
    | Check -> [ "-workers"; workers ]
    | Simulate(behaviours, depth) -> [ "-simulate"; $"num={behaviours}"; "-depth"; string depth; "-seed"; "1"; "-workers"; "1" ]
    | Graph -> [ "-workers"; "1"; "-seed"; string seed; "-fp"; string fingerprintIndex; "-dump"; "dot,actionlabels"; "graph.dot" ]
    | Traces(simulated, _, _, depth) ->
        [ "-simulate"; $"num={simulated}"; "-depth"; string depth; "-seed"; string seed; "-fp"; string fingerprintIndex; "-workers"; "1" ]

/// Runs one model in a fresh directory (a trace module writes into it) and returns the run and
/// the directory; the caller deletes it.
let runModel (spec: string) (seed: int) (fingerprintIndex: int) (model: Model) : Run * string =
    let directory = newDirectory ()
    Directory.CreateDirectory(Path.Combine(directory, "traces")) |> ignore
    let arguments =
        simulationArguments model.Mode seed fingerprintIndex
        @ model.Options
        @ [ "-config"; Path.Combine(spec, model.Config + ".cfg"); Path.Combine(spec, model.Module + ".tla") ]
    tlc directory (int (float model.BudgetSeconds * budgetScale)) arguments, directory

// ---------------------------------------------------------------------------------------------
// Fixtures.

let sha256Hex (bytes: byte[]) = Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()
/// A source's hash: line endings do not count (a Windows checkout is as fresh).
let sourceHash (path: string) = sha256Hex (Encoding.UTF8.GetBytes((File.ReadAllText path).Replace("\r", "")))

let gzip (path: string) (text: string) =
    use file = File.Create path
    use compressed = new GZipStream(file, CompressionLevel.SmallestSize)
    let bytes = Encoding.UTF8.GetBytes text
    compressed.Write(bytes, 0, bytes.Length)

/// The constants of a .cfg as written ("Node": "{1, 2, 3}"), for the conformance harnesses.
let constantsOf (config: string) : JsonObject =
    let constants = JsonObject()
    let mutable inBlock = false
    for raw in File.ReadAllLines config do
        let line = (match raw.IndexOf "\\*" with -1 -> raw | at -> raw.Substring(0, at)).Trim()
        let words = line.Split([| ' '; '\t' |], StringSplitOptions.RemoveEmptyEntries)
        if words.Length > 0 && words[0] = "CONSTANTS" || words.Length > 0 && words[0] = "CONSTANT" then inBlock <- true
        elif raw.Length > 0 && not (Char.IsWhiteSpace raw[0]) && line <> "" then inBlock <- false
        if inBlock then
            let body = if words.Length > 0 && words[0].StartsWith "CONSTANT" then line.Substring(words[0].Length).Trim() else line
            let separator = [ "<-"; "=" ] |> List.tryFind (fun s -> body.Contains s)
            match separator with
            | Some separator when body <> "" ->
                let at = body.IndexOf separator
                let name = body.Substring(0, at).Trim()
                let value = body.Substring(at + separator.Length).Trim()
                constants[name] <- JsonValue.Create(if separator = "<-" then "<- " + value else value)
            | _ -> ()
    constants

/// The spec/ files TLC read for a run: its "Parsing file" lines under spec/, and the .cfg.
let sourcesOf (spec: string) (model: Model) (output: string) : string list =
    let modules =
        [ for found in Regex.Matches(output, @"Parsing file (\S+\.tla)") do
              let path = found.Groups[1].Value
              if Path.GetDirectoryName(Path.GetFullPath path) = Path.GetFullPath spec then Path.GetFileName path ]
    modules @ [ model.Config + ".cfg" ] |> List.distinct

/// The fixture a Graph or Traces run made, as (file name, content, entry for the manifest).
let fixtureOf (model: Model) (directory: string) (output: string) : Result<string * string * JsonObject, string> =
    let entry = JsonObject()
    let constantsFile =
        Directory.GetFiles(directory, "constants.json", SearchOption.AllDirectories) |> Array.tryHead
    let finish (file: string) (kind: string) (content: string) (fields: (string * JsonNode) list) =
        entry["file"] <- JsonValue.Create file
        entry["kind"] <- JsonValue.Create kind
        entry["module"] <- JsonValue.Create model.Module
        entry["config"] <- JsonValue.Create(model.Config + ".cfg")
        entry["sha256"] <- JsonValue.Create(sha256Hex (Encoding.UTF8.GetBytes content))
        for name, value in fields do
            entry[name] <- value
        entry["constants"] <- constantsOf (Path.Combine(specDir, model.Config + ".cfg"))
        match constantsFile with
        | Some path ->
            // TLC writes <<record>>: the record is the value of every constant.
            match JsonNode.Parse(File.ReadAllText path) with
            | :? JsonArray as values when values.Count = 1 -> entry["values"] <- values[0].DeepClone()
            | values -> entry["values"] <- values.DeepClone()
        | None -> ()
        Ok(file, content, entry)
    match model.Mode with
    | Graph ->
        // The tooltips repeat the labels word for word: dropped to halve the file.
        let dot = File.ReadAllText(Path.Combine(directory, "graph.dot"))
        let content = Regex.Replace(dot, @",tooltip=""(?:[^""\\]|\\.)*""", "")
        let states = lastNumber @"(\d+) distinct states found" output
        finish (model.Config + ".dot.gz") "graph" content [ ("states", JsonValue.Create(int states)) ]
    | Traces(simulated, kept, leastDepth, depth) ->
        let files =
            [ for number in 1..simulated do
                  let path =
                      [ directory; Path.Combine(directory, "traces") ]
                      |> List.map (fun d -> Path.Combine(d, $"behaviour_{number}.ndjson"))
                      |> List.tryFind File.Exists
                  match path with
                  | Some path ->
                      let lines = File.ReadAllLines path |> Array.filter (fun line -> line.Trim() <> "")
                      if lines.Length > leastDepth then lines
                  | None -> () ]
        let chosen = match kept with Some kept -> List.truncate kept files | None -> files
        match kept with
        | Some kept when chosen.Length < kept -> Error $"only {chosen.Length} behaviours of depth {leastDepth} or more, {kept} wanted"
        | _ when chosen.IsEmpty -> Error $"no behaviour of depth {leastDepth} or more"
        | _ ->
            let content = String.Join("", chosen |> List.collect (fun lines -> [ for line in lines -> line + "\n" ]))
            finish
                (model.Config + ".ndjson.gz")
                "traces"
                content
                [ "behaviours", JsonValue.Create chosen.Length
                  "least_depth", JsonValue.Create leastDepth
                  "simulation_depth", JsonValue.Create depth ]
    | Check
    | Simulate _ -> Error "not a fixture row"

let isFixtureRow (model: Model) = match model.Mode with Graph | Traces _ -> true | _ -> false
let fixtureDir (set: string) = Path.Combine(specDir, "fixtures", set)
let manifestPath (set: string) = Path.Combine(fixtureDir set, "manifest.json")
let writeOptions = JsonSerializerOptions(WriteIndented = true)

/// Makes one fixture row: runs it, judges it, and returns its fixture and sources.
let makeFixture (tally: Tally) (fixtureSet: FixtureSet) (model: Model) =
    let run, directory = runModel specDir fixtureSet.Seed fixtureSet.FingerprintIndex model
    try
        if report tally model.Config (modeName model.Mode) model run then
            match fixtureOf model directory run.Output with
            | Ok(file, content, entry) -> Some(file, content, entry, sourcesOf specDir model run.Output)
            | Error reason ->
                tally.Failed <- tally.Failed + 1
                printfn "  FAIL  %s: %s" model.Config reason
                None
        else
            None
    finally
        Directory.Delete(directory, true)

let rowsOf (set: string) = models |> List.filter (fun model -> model.Set = set && isFixtureRow model)

/// --fixtures: regenerates spec/fixtures/<set>/ in place.
let writeFixtures (fixtureSet: FixtureSet) (tally: Tally) =
    let made = rowsOf fixtureSet.Name |> List.map (makeFixture tally fixtureSet)
    if made |> List.forall Option.isSome then
        let made = List.choose id made
        let directory = fixtureDir fixtureSet.Name
        Directory.CreateDirectory directory |> ignore
        for old in Directory.GetFiles directory do
            File.Delete old
        let manifest = JsonObject()
        manifest["generator"] <- JsonValue.Create $"bash ci/tlc.sh --fixtures {fixtureSet.Name}"
        manifest["tlc"] <- JsonValue.Create tlcVersion.Value
        manifest["seed"] <- JsonValue.Create fixtureSet.Seed
        manifest["fingerprint_index"] <- JsonValue.Create fixtureSet.FingerprintIndex
        manifest["workers"] <- JsonValue.Create 1
        let sources = JsonObject()
        for source in made |> List.collect (fun (_, _, _, sources) -> sources) |> List.distinct |> List.sort do
            sources[$"spec/{source}"] <- JsonValue.Create(sourceHash (Path.Combine(specDir, source)))
        manifest["sources"] <- sources
        let fixtures = JsonArray()
        for file, content, entry, _ in made do
            gzip (Path.Combine(directory, file)) content
            fixtures.Add entry
        manifest["fixtures"] <- fixtures
        File.WriteAllText(manifestPath fixtureSet.Name, manifest.ToJsonString writeOptions + "\n")
        printfn "fixtures written to spec/fixtures/%s (%d files)" fixtureSet.Name made.Length

/// Freshness: the manifest exists, lists every fixture row of the set, and every source file
/// still has its recorded hash.
let checkFresh (set: string) : string list =
    if not (File.Exists(manifestPath set)) then
        [ $"spec/fixtures/{set}/manifest.json is missing" ]
    else
        let manifest = JsonNode.Parse(File.ReadAllText(manifestPath set))
        let sources = manifest["sources"].AsObject()
        let listed = [ for entry in manifest["fixtures"].AsArray() -> string entry["config"] ]
        [ for source in sources do
              let path = Path.Combine(root, source.Key)
              if not (File.Exists path) then $"{source.Key} no longer exists"
              elif sourceHash path <> string source.Value then $"{source.Key} changed"
          for model in rowsOf set do
              if not (List.contains (model.Config + ".cfg") listed) then $"{model.Config} has no fixture"
          for entry in manifest["fixtures"].AsArray() do
              let file = string entry["file"]
              if not (File.Exists(Path.Combine(fixtureDir set, file))) then $"{file} is missing" ]

let freshness (tally: Tally) (sets: string list) =
    for set in sets do
        match checkFresh set with
        | [] -> tally.Pass $"fixtures {set}: fresh (every source has the hash in its manifest)"
        | stale ->
            let stale = String.Join(", ", stale)
            tally.Fail $"fixtures {set}: STALE: {stale}; run bash ci/tlc.sh --fixtures {set} and commit spec/fixtures/{set}"

/// A default run's fixture row: model-checks or simulates it, and compares the content hash of
/// what it made with the manifest's when the TLC revision is the one the fixtures were made with.
let compareFixture (tally: Tally) (fixtureSet: FixtureSet) (model: Model) =
    let run, directory = runModel specDir fixtureSet.Seed fixtureSet.FingerprintIndex model
    try
        let ok, result = judge model run
        let recorded =
            if File.Exists(manifestPath fixtureSet.Name) then
                let manifest = JsonNode.Parse(File.ReadAllText(manifestPath fixtureSet.Name))
                let entry =
                    manifest["fixtures"].AsArray()
                    |> Seq.tryFind (fun entry -> string entry["config"] = model.Config + ".cfg")
                Some(string manifest["tlc"], entry |> Option.map (fun entry -> string entry["sha256"]))
            else
                None
        let made = if ok then Some(fixtureOf model directory run.Output) else None
        /// Ok note (printed under the row) or Error (the row fails).
        let fixtureVerdict =
            match made, recorded with
            | Some(Ok(_, content, _)), Some(version, Some sha) ->
                if sha256Hex (Encoding.UTF8.GetBytes content) = sha then
                    Ok $"fixture identical to spec/fixtures/{fixtureSet.Name}"
                elif revisionOf version <> revisionOf tlcVersion.Value then
                    Ok $"fixture differs, but the committed one was made by another TLC revision ({version}): not compared"
                else
                    Error $"FIXTURE DIFFERS from spec/fixtures/{fixtureSet.Name}: run bash ci/tlc.sh --fixtures {fixtureSet.Name}"
            | Some(Ok _), _ -> Error $"no committed fixture: run bash ci/tlc.sh --fixtures {fixtureSet.Name}"
            | Some(Error reason), _ -> Error reason
            | None, _ -> Ok ""
        match fixtureVerdict with
        | Ok note ->
            report tally model.Config (modeName model.Mode) model run |> ignore
            if note <> "" then printfn "        %s" note
        | Error problem -> tally.Fail $"{model.Config}: {problem}"
    finally
        Directory.Delete(directory, true)

// ---------------------------------------------------------------------------------------------
// Mutations: spec/mutations/<Module>.mutations (format: spec/README.md, "Spec mutation check").

type Mutation = { Name: string; Target: string; Before: string; After: string; Model: Model; Problem: string option }

let readMutations (path: string) : Mutation list =
    let target = Path.GetFileNameWithoutExtension path + ".tla"
    let entries = ResizeArray<string * ResizeArray<string>>()
    for line in File.ReadAllLines path do
        if line.StartsWith "=== " then entries.Add(line.Substring(4).Trim(), ResizeArray())
        elif entries.Count > 0 then (snd entries[entries.Count - 1]).Add line
    let isComment (line: string) = line.Trim() = "" || line.TrimStart().StartsWith "#"
    /// Whole lines; a block ends with the blank and "#" lines between entries: not spec text.
    let trimBlock (lines: string list) =
        match lines |> List.rev |> List.skipWhile isComment |> List.rev with
        | [] -> ""
        | lines -> String.Join("\n", lines) + "\n"
    [ for name, lines in entries do
          let lines = List.ofSeq lines
          let beforeAt = lines |> List.tryFindIndex (fun line -> line.TrimEnd() = "--- before")
          let afterAt = lines |> List.tryFindIndex (fun line -> line.TrimEnd() = "--- after")
          let fieldLines = lines |> List.take (defaultArg beforeAt lines.Length) |> List.filter (isComment >> not)
          let fields =
              [ for line in fieldLines do
                    match line.IndexOf ':' with
                    | at when at > 0 && Regex.IsMatch(line.Substring(0, at), "^[a-z]+$") -> line.Substring(0, at), line.Substring(at + 1).Trim()
                    | _ -> "bad", line ]
          let field key = fields |> List.tryFind (fst >> (=) key) |> Option.map snd
          let modelWords = (defaultArg (field "model") "").Split(' ', StringSplitOptions.RemoveEmptyEntries)
          let problem =
              match beforeAt, afterAt, field "catches" with
              | _ when fields |> List.exists (fst >> (=) "bad") ->
                  Some("not a field: " + (fields |> List.find (fst >> (=) "bad") |> snd))
              | Some b, Some a, Some _ when b < a && modelWords.Length = 2 -> None
              | _ -> Some "malformed entry (needs model: <Module> <Config>, catches: <Property>, --- before, --- after)"
          let before, after =
              match beforeAt, afterAt with
              | Some b, Some a when b < a -> trimBlock lines[b + 1 .. a - 1], trimBlock lines[a + 1 ..]
              | _ -> "", ""
          { Name = name
            Target = target
            Before = before
            After = after
            Problem = problem
            Model =
              { Set = "mutations"
                Module = (if modelWords.Length = 2 then modelWords[0] else "?")
                Config = (if modelWords.Length = 2 then modelWords[1] else "?")
                Mode = Check
                Expect = Violates [ for p in (defaultArg (field "catches") "").Split('|') -> p.Trim() ]
                BudgetSeconds = field "timeout" |> Option.map int |> Option.defaultValue 300
                Long = (field "long" = Some "yes")
                Options = (defaultArg (field "options") "").Split(' ', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray } } ]

/// Replaces the before text (whole lines, exactly once) by the after text.
let mutate (spec: string) (before: string) (after: string) : Result<string, string> =
    let text = "\n" + spec.Replace("\r", "")
    let needle = "\n" + before
    let first = text.IndexOf(needle, StringComparison.Ordinal)
    if before = "" || first < 0 then Error "before text not found: the spec moved on, update the mutation"
    elif text.IndexOf(needle, first + 1, StringComparison.Ordinal) >= 0 then Error "before text occurs more than once: make it unique"
    else Ok(text.Substring(1, first) + after + text.Substring(first + needle.Length))

let runMutation (tally: Tally) (mutation: Mutation) =
    let label = $"{mutation.Name} ({mutation.Model.Module} {mutation.Model.Config})"
    match mutation.Problem with
    | Some problem -> tally.Fail $"{label}: {problem}"
    | None ->
        let copy = newDirectory ()
        try
            for file in Directory.GetFiles specDir do
                File.Copy(file, Path.Combine(copy, Path.GetFileName file))
            let targetPath = Path.Combine(copy, mutation.Target)
            match (if File.Exists targetPath then mutate (File.ReadAllText targetPath) mutation.Before mutation.After else Error "no such spec") with
            | Error reason -> tally.Fail $"{label}: {reason} (spec/{mutation.Target})"
            | Ok mutated ->
                File.WriteAllText(targetPath, mutated)
                let run, directory = runModel copy 1 1 mutation.Model
                Directory.Delete(directory, true)
                report tally mutation.Name "mutation" mutation.Model run |> ignore
        finally
            Directory.Delete(copy, true)

// ---------------------------------------------------------------------------------------------
// Command line.

let arguments = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray

let rec parse (only: string list option) (command: string) (sets: string list) (arguments: string list) =
    match arguments with
    | [] -> Ok(only, command, sets)
    | "--only" :: names :: rest -> parse (Some(List.ofArray (names.Split(',', StringSplitOptions.RemoveEmptyEntries)))) command sets rest
    | "--fixtures" :: rest ->
        let named = rest |> List.takeWhile (fun a -> not (a.StartsWith "--"))
        parse only "fixtures" named (List.skip named.Length rest)
    | "--check" :: rest -> parse only "check" sets rest
    | ("-h" | "--help") :: _ -> Error ""
    | other :: _ -> Error $"unknown argument: {other}"

let selected (only: string list option) (model: Model) =
    match only with
    | None -> true
    | Some names -> names |> List.exists (fun name -> name = model.Set || name = model.Config)

let main () =
    match parse None "run" [] arguments with
    | Error message ->
        if message <> "" then eprintfn "%s" message
        eprintfn "%s" usage
        if message = "" then 0 else 2
    | Ok(_, "check", _) ->
        let tally = Tally()
        freshness tally [ for set in fixtureSets -> set.Name ]
        suiteLine "fixtures" tally
        if tally.Failed = 0 then 0 else 1
    | Ok(_, "fixtures", named) when named |> List.exists (fun n -> not (fixtureSets |> List.exists (fun s -> s.Name = n))) ->
        eprintfn "unknown fixture set in %A; sets: %A" named [ for s in fixtureSets -> s.Name ]
        2
    | Ok(_, "fixtures", _) when jar.IsNone ->
        printfn "TLC not found: cannot make fixtures"
        1
    | Ok(_, "fixtures", named) ->
        printfn "tlc: %s (%s)" tlcVersion.Value jar.Value
        let tally = Tally()
        header ()
        for set in fixtureSets do
            if named.IsEmpty || List.contains set.Name named then
                match rowsOf set.Name |> List.tryPick (fun model -> unsupported model.Module) with
                | Some reason -> tally.Fail $"fixtures {set.Name}: cannot be made: {reason}"
                | None -> writeFixtures set tally
        suiteLine "fixtures" tally
        if tally.Failed = 0 then 0 else 1
    | Ok(only, _, _) ->
        let setsWanted = [ for set in fixtureSets do if (match only with None -> true | Some names -> List.contains set.Name names) then set.Name ]
        let fresh = Tally()
        freshness fresh setsWanted
        match jar with
        | None ->
            printfn "TLC not found: model checking SKIPPED"
            suiteLine "fixtures" fresh
            printfn "tlc: %d passed, %d failed, %d skipped" total.Passed total.Failed total.Skipped
            if total.Failed = 0 then 0 else 1
        | Some jar ->
            printfn "tlc: %s (%s)" tlcVersion.Value jar
            let watch = Stopwatch.StartNew()
            if only.IsNone || only |> Option.exists (List.contains "sany") then
                let tally = Tally()
                sany tally
                suiteLine "sany" tally
            for set in fixtureSets do
                let tally = Tally()
                let rows = models |> List.filter (fun model -> model.Set = set.Name && selected only model)
                if not rows.IsEmpty then
                    printfn "== %s" set.Name
                    header ()
                    for model in rows do
                        match unsupported model.Module with
                        | _ when model.Long && not runLong -> tally.Skip(sprintf "%-34s (long: set TLC_LONG=1)" model.Config)
                        | Some reason -> tally.Skip(sprintf "%-34s %s" model.Config reason)
                        | None when isFixtureRow model -> compareFixture tally set model
                        | None ->
                            let run, directory = runModel specDir set.Seed set.FingerprintIndex model
                            Directory.Delete(directory, true)
                            report tally model.Config (modeName model.Mode) model run |> ignore
                    suiteLine set.Name tally
            suiteLine "fixtures" fresh
            let mutations =
                Directory.GetFiles(Path.Combine(specDir, "mutations"), "*.mutations")
                |> Array.sort
                |> List.ofArray
                |> List.collect readMutations
                |> List.filter (fun mutation ->
                    match only with
                    | None -> true
                    | Some names -> List.contains "mutations" names || List.contains mutation.Name names)
            if not mutations.IsEmpty then
                let tally = Tally()
                printfn "== mutations (spec/mutations)"
                header ()
                for mutation in mutations do
                    match unsupported mutation.Model.Module with
                    | _ when mutation.Model.Long && not runLong -> tally.Skip(sprintf "%-34s (long: set TLC_LONG=1)" mutation.Name)
                    | Some reason -> tally.Skip(sprintf "%-34s %s" mutation.Name reason)
                    | None -> runMutation tally mutation
                suiteLine "mutations" tally
            printfn "tlc: TLC ran for %.0f s" watch.Elapsed.TotalSeconds
            printfn "tlc: %d passed, %d failed, %d skipped" total.Passed total.Failed total.Skipped
            if total.Failed = 0 then 0 else 1

exit (main ())
