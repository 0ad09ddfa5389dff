using Microsoft.Extensions.Logging;
using StdDaq.Assembler;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;

// StdAssembler <config.json> [--gains-and-pedestals <file.h5>] [--workers N] [--timeout-ms MS] [--discard-incomplete]
const string usage = "StdAssembler <config.json> [--gains-and-pedestals <file.h5>] [--workers N] [--timeout-ms MS] [--discard-incomplete]";
return ServiceHost.Run("StdAssembler", args, usage, (a, logger, ct) =>
{
    if (a.Positional.Count != 1)
        throw new UsageException("expected <config.json>");
    var config = ServiceHost.LoadConfig(a.Positional[0], logger);
    if (a.Option("gains-and-pedestals") is { } gp)
        config = config with { GainsAndPedestals = gp };
    var options = new AssemblerOptions
    {
        Workers = (int)a.Long("workers", 0, 0, 256),
        TimeoutMs = a.Option("timeout-ms") != null ? a.Double("timeout-ms", 0, 1, 600_000) : null,
        DiscardIncomplete = a.Flag("discard-incomplete"),
    };
    using var assembler = new Assembler(config, logger, options, startup: ct);
    assembler.Run(ct);
    return 0;
}, options: ["gains-and-pedestals", "workers", "timeout-ms"], flags: ["discard-incomplete"]);
