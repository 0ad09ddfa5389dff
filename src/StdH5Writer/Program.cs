using Microsoft.Extensions.Logging;
using StdDaq.Shared.Config;
using StdDaq.Shared.Hosting;
using StdDaq.Shared.Interop;
using StdDaq.Writer;

// StdH5Writer <config.json>
const string usage = "StdH5Writer <config.json>";
return ServiceHost.Run("StdH5Writer", args, usage, (a, logger, ct) =>
{
    if (a.Positional.Count != 1)
        throw new UsageException("expected <config.json>");
    var config = ServiceHost.LoadConfig(a.Positional[0], logger);
    Hdf5.Check(Hdf5.H5open(), "H5open"); // libhdf5 missing: one line and exit 1 now, not at the first request
    Liblz4.EnsureAvailable(); // likewise liblz4, which bitshuffle-LZ4 requests need
    using var writer = new WriterService(config, new WriterOptions { ConfigText = File.ReadAllText(a.Positional[0]) }, logger);
    writer.RunAsync(ct).GetAwaiter().GetResult();
    return 0;
}, options: []);
