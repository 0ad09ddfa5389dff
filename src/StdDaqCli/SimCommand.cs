using System.CommandLine;
using System.Net;
using StdDaq.Cli.Sim;
using StdDaq.Shared.Hosting;

namespace StdDaq.Cli;

/// <summary>`std-daq sim`: paced detector packets with seeded fault injection, or a capture replayed.</summary>
internal static class SimCommand
{
    public static Command Create()
    {
        var configPath = CliOptions.ConfigArgument();
        var sim = new SimCommandLine();
        var host = CliOptions.Ipv4("--host", "where to send the packets", IPAddress.Parse(new SimOptions().Host));
        var reportPath = CliOptions.Text("--report", "FILE.json", "also write what was sent and every faulty packet (module:image:packet) as JSON");
        var replay = CliOptions.Text("--replay", "DIR",
            "send the capture files in DIR (u64 length + datagram records; <port>.dat, else start port + index) instead of the pattern");
        var command = new Command("sim",
            "Sends a detector's UDP packets (JUNGFRAU, EIGER, GigaFRoST) with the simulator pixel pattern, paced, with seeded " +
            "fault injection; prints what it sent and exactly which packets it dropped, truncated, duplicated or swapped.")
        {
            configPath,
        };
        sim.AddTo(command);
        command.Add(host);
        command.Add(reportPath);
        command.Add(replay);
        command.SetBody((a, logger, ct) =>
        {
            var config = ServiceHost.LoadConfig(a.GetValue(configPath)!, logger, service: false);
            var options = sim.Read(a, config) with { Host = a.GetValue(host)!.ToString(), Replay = a.GetValue(replay) };
            SimReport report;
            if (options.Replay != null)
            {
                using var capture = new CaptureReplay(config, options);
                report = capture.Run(ct);
            }
            else
            {
                using var simulator = new DetectorSimulator(config, options);
                report = simulator.Run(ct);
            }
            Console.WriteLine(report.Summary());
            if (a.GetValue(reportPath) is { } path)
                File.WriteAllText(path, report.ToJson());
            return 0;
        });
        return command;
    }
}
