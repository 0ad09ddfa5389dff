using System.CommandLine;
using System.Globalization;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli.Sim;

/// <summary>
/// The simulator's pacing and fault-injection options, declared once for `std-daq sim` and
/// `std-daq up --simulate`; their defaults are <see cref="SimOptions"/>'s.
/// </summary>
internal sealed class SimCommandLine
{
    private static readonly SimOptions Defaults = new();

    private readonly Option<double> _rate = CliOptions.Number("--rate", "HZ", "frames per second per module; 0 = as fast as possible", Defaults.Rate, 0, 1e6);
    private readonly Option<long> _frames = CliOptions.Number("--frames", "N", "frames to send per module", Defaults.Frames, 1);
    private readonly Option<double?> _seconds = CliOptions.OptionalNumber<double>("--seconds", "S", "send for this long instead of a number of frames", 0.001, 1e7);
    private readonly Option<IReadOnlyList<int>?> _modules = new("--modules")
    {
        HelpName = "0,1,..",
        Description = "the modules to send (default: all)",
        CustomParser = r =>
        {
            var ids = new List<int>();
            foreach (string s in r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries)))
            {
                if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int m))
                {
                    r.AddError($"--modules: '{s}' is not a module id");
                    return null;
                }
                ids.Add(m);
            }
            return ids;
        },
    };
    private readonly Option<ulong> _startId = CliOptions.Number("--start-id", "ID", "the first image id", Defaults.StartId);
    private readonly Option<double> _loss = CliOptions.Number("--loss", "P", "probability of dropping a packet", Defaults.Loss, 0, 1);
    private readonly Option<double> _duplicate = CliOptions.Number("--duplicate", "P", "probability of sending a packet twice", Defaults.Duplicate, 0, 1);
    private readonly Option<double> _reorder = CliOptions.Number("--reorder", "P", "probability of swapping a packet with the next", Defaults.Reorder, 0, 1);
    private readonly Option<double> _truncate = CliOptions.Number("--truncate", "P", "probability of cutting a packet short", Defaults.Truncate, 0, 1);
    private readonly Option<int> _seed = CliOptions.Number("--seed", "N", "seed of the fault injection", Defaults.Seed);
    private readonly Option<int> _burst = CliOptions.Number("--burst", "PACKETS", "packets per paced burst", Defaults.Burst, 1, 1024);

    public void AddTo(Command command)
    {
        foreach (var o in (Option[])[_rate, _frames, _seconds, _modules, _startId, _loss, _duplicate, _reorder, _truncate, _seed, _burst])
            command.Add(o);
    }

    /// <summary>Whether the command line says how much to send (--frames or --seconds).</summary>
    public bool AmountGiven(ParseResult a) => a.Given(_frames) || a.Given(_seconds);

    /// <summary>The options, checked against the detector (module ids); host and replay are the defaults.</summary>
    public SimOptions Read(ParseResult a, DetectorConfig config)
    {
        var modules = a.GetValue(_modules);
        foreach (int m in modules ?? [])
            if (m < 0 || m >= config.NModules)
                throw new UsageException($"--modules: module {m} is not in 0..{config.NModules - 1}");
        if (a.Given(_frames) && a.Given(_seconds))
            throw new UsageException("give --frames or --seconds, not both");
        return new SimOptions
        {
            Rate = a.GetValue(_rate),
            Frames = a.GetValue(_frames),
            Seconds = a.GetValue(_seconds),
            Modules = modules,
            StartId = a.GetValue(_startId),
            Loss = a.GetValue(_loss),
            Duplicate = a.GetValue(_duplicate),
            Reorder = a.GetValue(_reorder),
            Truncate = a.GetValue(_truncate),
            Seed = a.GetValue(_seed),
            Burst = a.GetValue(_burst),
        };
    }
}
