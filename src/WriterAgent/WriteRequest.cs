using System.Text.Json;
using StdDaq.Shared.Config;
using StdDaq.Shared.Streams;
using StdDaq.Shared.Files;

namespace StdDaq.Agent;

/// <summary>
/// A write request (DESIGN §7): <c>{"output_file": "/abs/path.h5", "n_images": N, "user_id": uid}</c>
/// plus our optional fields <c>run_id</c>, <c>start_image_id</c>, <c>compression</c>
/// ("none" | "bitshuffle-lz4"), <c>overwrite</c> (bool) and <c>metadata</c> (an object of
/// scalars stored as file attributes, except the keys of the run's NXmx geometry and sample,
/// <see cref="NxmxRun.Keys"/>, which go into the file's NeXus description).
/// </summary>
public sealed record WriteRequest
{
    public const long MaxImages = 1L << 40;

    public required string OutputFile { get; init; }
    public required long NImages { get; init; }
    public JsonElement? UserId { get; init; }
    public long? RunId { get; init; }
    public ulong StartImageId { get; init; }
    public required ImageCompression Compression { get; init; }
    public bool Overwrite { get; init; }
    public Dictionary<string, string> Metadata { get; init; } = [];
    /// <summary>The metadata's NXmx values (wavelength, distance, beam centre, omega, sample, times), checked.</summary>
    public NxmxRun Nxmx { get; init; } = NxmxRun.None;

    /// <summary>
    /// Parses and checks a request body against the config (output roots, default compression) and
    /// the file system. Throws <see cref="BadRequestException"/> with the message the user sees.
    /// <paramref name="begunBefore"/>: the request may have been begun by an agent that went away,
    /// so its own file may exist already (an HDF5 file is accepted there, as with overwrite).
    /// </summary>
    public static WriteRequest Parse(ReadOnlySpan<byte> body, DetectorConfig config, bool begunBefore = false)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body.ToArray());
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"request body is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new BadRequestException($"request body must be a JSON object, got {root.ValueKind}");

            if (!root.TryGetProperty("output_file", out var of) || of.ValueKind == JsonValueKind.Null)
                throw new BadRequestException("output_file: missing");
            if (of.ValueKind != JsonValueKind.String || of.GetString() is not { Length: > 0 } path)
                throw new BadRequestException("output_file: must be a non-empty string");

            if (!root.TryGetProperty("n_images", out var n) || n.ValueKind == JsonValueKind.Null)
                throw new BadRequestException("n_images: missing");
            if (n.ValueKind != JsonValueKind.Number || !n.TryGetInt64(out long nImages))
                throw new BadRequestException($"n_images: must be an integer, got {n.GetRawText()}");
            if (nImages < 1 || nImages > MaxImages)
                throw new BadRequestException($"n_images: must be between 1 and {MaxImages}, got {nImages}");

            bool overwrite = false;
            if (root.TryGetProperty("overwrite", out var ow))
            {
                if (ow.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new BadRequestException($"overwrite: must be true or false, got {ow.GetRawText()}");
                overwrite = ow.GetBoolean();
            }
            // Checked early to fail at once; the writer checks again as it creates the file.
            try
            {
                OutputPath.Check(path, config.WriterOutputRoots, overwrite || begunBefore);
            }
            catch (OutputPathException e)
            {
                throw new BadRequestException($"output_file: {e.Message}");
            }

            var compression = config.WriterCompression;
            if (root.TryGetProperty("compression", out var c) && c.ValueKind != JsonValueKind.Null)
            {
                string named = c.ValueKind == JsonValueKind.String ? c.GetString()! : c.GetRawText();
                if (!Choices.Compression.TryParse(named, out compression))
                    throw new BadRequestException($"compression: '{named}' is not one of {Choices.Compression.Names}");
            }

            long? runId = null;
            if (root.TryGetProperty("run_id", out var r) && r.ValueKind != JsonValueKind.Null)
            {
                if (r.ValueKind != JsonValueKind.Number || !r.TryGetInt64(out long rid) || rid < 0)
                    throw new BadRequestException($"run_id: must be a non-negative integer, got {r.GetRawText()}");
                runId = rid;
            }

            ulong start = 0;
            if (root.TryGetProperty("start_image_id", out var s) && s.ValueKind != JsonValueKind.Null)
            {
                if (s.ValueKind != JsonValueKind.Number || !s.TryGetUInt64(out start))
                    throw new BadRequestException($"start_image_id: must be a non-negative integer, got {s.GetRawText()}");
            }

            var metadata = new Dictionary<string, string>();
            var nxmx = NxmxRun.None;
            if (root.TryGetProperty("metadata", out var md) && md.ValueKind != JsonValueKind.Null)
            {
                if (md.ValueKind != JsonValueKind.Object)
                    throw new BadRequestException($"metadata: must be an object of names to values, got {md.ValueKind}");
                try
                {
                    nxmx = NxmxRun.FromMetadata(md);
                }
                catch (FormatException e)
                {
                    throw new BadRequestException(e.Message);
                }
                foreach (var p in md.EnumerateObject())
                {
                    if (NxmxRun.IsKey(p.Name))
                        continue;
                    if (StoreStreamMessage.ReservedAttributes.Contains(p.Name))
                        throw new BadRequestException($"metadata.{p.Name}: reserved: the writer writes the file attribute '{p.Name}' itself");
                    if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                        throw new BadRequestException($"metadata.{p.Name}: must be a string, number or boolean");
                    metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                }
            }

            var userId = root.TryGetProperty("user_id", out var u) ? u.Clone() : (JsonElement?)null;
            CheckMessageSize(path, nImages, compression, overwrite, userId, metadata, nxmx, config);
            return new WriteRequest
            {
                OutputFile = path,
                NImages = nImages,
                UserId = userId,
                RunId = runId,
                StartImageId = start,
                Compression = compression,
                Overwrite = overwrite,
                Metadata = metadata,
                Nxmx = nxmx,
            };
        }
    }
    /// <summary>
    /// The request's first StoreStream message carries its metadata as file attributes; the writer
    /// takes messages of at most <see cref="StoreStreamMessage.MaxBytes"/>. Measured here, with the
    /// largest ids and the attributes the agent adds, so a request too large fails at once, saying so.
    /// </summary>
    private static void CheckMessageSize(string path, long nImages, ImageCompression compression, bool overwrite, JsonElement? userId,
        Dictionary<string, string> metadata, NxmxRun nxmx, DetectorConfig config)
    {
        var attributes = new Dictionary<string, string>(metadata)
        {
            ["detector_name"] = config.DetectorName,
            ["detector_type"] = config.DetectorType,
            ["run_id"] = long.MaxValue.ToString(),
            ["request_id"] = new string('0', 64),
            ["user_id"] = userId?.GetRawText() ?? "",
        };
        int size = new StoreStreamMessage
        {
            OutputFile = path, RunId = long.MaxValue, NImages = nImages, UserId = userId, ImageId = ulong.MaxValue, IImage = 0,
            RequestId = new string('0', 64), Compression = Choices.Compression.Name(compression), Overwrite = overwrite, Attributes = attributes,
            Nxmx = nxmx,
        }.ToJson().Length;
        if (size > StoreStreamMessage.MaxBytes)
            throw new BadRequestException($"metadata: too large: the request's metadata and output_file make a {size}-byte writer message; "
                + $"at most {StoreStreamMessage.MaxBytes} bytes fit (send less metadata)");
    }
}

/// <summary>A request that cannot run; its message goes to the user as the request_fail message.</summary>
public sealed class BadRequestException(string message) : Exception(message);
