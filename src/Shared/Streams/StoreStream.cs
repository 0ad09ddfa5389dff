using System.Text.Json;
using System.Text.Json.Serialization;

namespace StdDaq.Shared.Streams;

/// <summary>
/// One StoreStream message (WriterAgent PUB → StdH5Writer SUB, one JSON object per message), with
/// std-daq's fields first. <see cref="IImage"/> runs 0..n_images-1 for the images to write; a message
/// with i_image == n_images closes the file (it may lack image_id). The other fields are ours and
/// optional, so a std-daq writer agent's messages are accepted too.
/// </summary>
public sealed record StoreStreamMessage
{
    /// <summary>The file to write: an absolute path, checked against writer_output_roots.</summary>
    [JsonPropertyName("output_file")] public required string OutputFile { get; init; }
    /// <summary>Names the run: every message of one run, and the writer's acknowledgements, carry it (our agent's: ms since the epoch, increasing).</summary>
    [JsonPropertyName("run_id")] public required long RunId { get; init; }
    /// <summary>Images the run writes, at least 1: the file's first dimension.</summary>
    [JsonPropertyName("n_images")] public required long NImages { get; init; }
    /// <summary>std-daq's user id, any JSON value, passed along unread.</summary>
    [JsonPropertyName("user_id")] public JsonElement? UserId { get; init; }
    /// <summary>The ImageBuffer image to store at <see cref="IImage"/>; required except on the close message.</summary>
    [JsonPropertyName("image_id")] public ulong? ImageId { get; init; }
    /// <summary>The image's index in the file, 0..n_images-1; n_images closes the file.</summary>
    [JsonPropertyName("i_image")] public required long IImage { get; init; }

    // Ours.
    /// <summary>The write request's id (its AMQP correlation_id), echoed in the acknowledgements.</summary>
    [JsonPropertyName("request_id")] public string? RequestId { get; init; }
    /// <summary>"none" or "bitshuffle-lz4" (<see cref="Config.Choices.Compression"/>); absent: the writer's writer_compression.</summary>
    [JsonPropertyName("compression")] public string? Compression { get; init; }
    /// <summary>Replace an existing file at <see cref="OutputFile"/>, if it is a regular HDF5 file; false: an existing file fails the run.</summary>
    [JsonPropertyName("overwrite")] public bool Overwrite { get; init; }
    /// <summary>File attributes to store (user metadata), sent with i_image 0; none of <see cref="ReservedAttributes"/>.</summary>
    [JsonPropertyName("attributes")] public Dictionary<string, string>? Attributes { get; init; }
    /// <summary>The run's geometry and sample for the file's NXmx description, sent with i_image 0; absent: the defaults.</summary>
    [JsonPropertyName("nxmx")] public NxmxRun? Nxmx { get; init; }
    /// <summary>On a close message: why the run ended early (the file is marked interrupted).</summary>
    [JsonPropertyName("interrupted")] public string? Interrupted { get; init; }
    /// <summary>
    /// Ours, scale-out writing: write the master file <see cref="OutputFile"/> over these share
    /// files (one message, outside any run; with <see cref="NImages"/>, <see cref="Attributes"/>,
    /// <see cref="Nxmx"/>, <see cref="Overwrite"/>, and <see cref="Interrupted"/> when a share did
    /// not end whole). The writer answers <see cref="WriterAck.Master"/> or <see cref="WriterAck.Error"/>.
    /// </summary>
    [JsonPropertyName("master")] public MasterSpec? Master { get; init; }

    /// <summary>
    /// Root attributes the writer writes itself (its run status and NeXus's file attributes), so no
    /// entry of <see cref="Attributes"/> may have these names.
    /// </summary>
    public static readonly IReadOnlyList<string> ReservedAttributes =
        ["n_images_requested", "n_images_written", "interrupted", "interrupted_reason", "default", "file_name", "file_time", "creator", "NX_class"];

    /// <summary>This message closes the run's file (i_image == n_images).</summary>
    public bool IsClose => IImage == NImages;

    /// <summary>
    /// The largest message the writer takes (its receive buffer). A request whose first message
    /// (the one that carries the user metadata) would be larger fails when it is checked.
    /// </summary>
    public const int MaxBytes = 256 * 1024;

    /// <summary>The message as UTF-8 JSON; null fields are left out.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, StreamJson.Default.StoreStreamMessage);

    /// <summary>Parses one message; null (and <paramref name="error"/>) when it is not a valid one.</summary>
    public static StoreStreamMessage? Parse(ReadOnlySpan<byte> json, out string? error)
    {
        try
        {
            var m = JsonSerializer.Deserialize(json, StreamJson.Default.StoreStreamMessage);
            error = m == null ? "null message"
                : m.NImages < 1 ? $"n_images {m.NImages} < 1"
                : m.IImage < 0 || m.IImage > m.NImages ? $"i_image {m.IImage} outside 0..{m.NImages}"
                : !m.IsClose && m.ImageId == null ? $"i_image {m.IImage} has no image_id"
                : m.Compression != null && !Config.Choices.Compression.TryParse(m.Compression, out _)
                    ? $"compression '{m.Compression}' is not one of {Config.Choices.Compression.Names}"
                : null;
            return error == null ? m : null;
        }
        catch (JsonException e)
        {
            error = e.Message;
            return null;
        }
    }
}

/// <summary>What the writer reports to the agent (StdH5Writer PUSH → WriterAgent PULL; ours).</summary>
public sealed record WriterAck
{
    /// <summary>
    /// The <see cref="Event"/> values: opened (the file is created), progress (after each flush),
    /// closed (the file is closed, whole or interrupted), error (the run failed, or never had a file).
    /// </summary>
    public const string Opened = "opened", Progress = "progress", Closed = "closed", Error = "error";

    /// <summary>Ours: the master file of a <see cref="StoreStreamMessage.Master"/> message is written (its images in <see cref="NImagesWritten"/>).</summary>
    public const string Master = "master";

    /// <summary>What happened: <see cref="Opened"/>, <see cref="Progress"/>, <see cref="Closed"/> or <see cref="Error"/>.</summary>
    [JsonPropertyName("event")] public required string Event { get; init; }
    /// <summary>The run it is about (<see cref="StoreStreamMessage.RunId"/>).</summary>
    [JsonPropertyName("run_id")] public required long RunId { get; init; }
    /// <summary>The run's request_id, if its messages had one.</summary>
    [JsonPropertyName("request_id")] public string? RequestId { get; init; }
    /// <summary>The run's file.</summary>
    [JsonPropertyName("output_file")] public string? OutputFile { get; init; }
    /// <summary>Images in the file so far as data (those not written are in <see cref="Missing"/>).</summary>
    [JsonPropertyName("n_images_written")] public long NImagesWritten { get; init; }
    /// <summary>Image ids that were not written, with the reason of each.</summary>
    [JsonPropertyName("missing")] public List<MissingImage>? Missing { get; init; }
    /// <summary>Closed events: why the file was closed before all its images came; null when it is whole.</summary>
    [JsonPropertyName("interrupted")] public string? Interrupted { get; init; }
    /// <summary>Images written with status incomplete or id mismatch (a module missing, packets lost).</summary>
    [JsonPropertyName("n_images_incomplete")] public long NImagesIncomplete { get; init; }
    /// <summary>Module id → number of written images without that module (closed and error events).</summary>
    [JsonPropertyName("modules_missing")] public Dictionary<string, long>? ModulesMissing { get; init; }
    /// <summary>Error text (event "error"), or a note.</summary>
    [JsonPropertyName("message")] public string? Message { get; init; }

    /// <summary>The acknowledgement as UTF-8 JSON; null fields are left out.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, StreamJson.Default.WriterAck);

    /// <summary>Parses one acknowledgement; null when it is not valid JSON of this shape.</summary>
    public static WriterAck? Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, StreamJson.Default.WriterAck);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>An image of a run that is not in the file as good data, and why.</summary>
public sealed record MissingImage(
    [property: JsonPropertyName("i_image")] long IImage,
    [property: JsonPropertyName("image_id")] ulong ImageId,
    [property: JsonPropertyName("reason")] string Reason);

/// <summary>The share files a master file maps: N, and for each file the master row of its row 0 (its rows follow every N-th).</summary>
public sealed record MasterSpec(
    [property: JsonPropertyName("shares")] int Shares,
    [property: JsonPropertyName("files")] List<MasterShareFile> Files);

/// <summary>One share file of a master: its path and the master row its row 0 is.</summary>
public sealed record MasterShareFile(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("first_row")] long FirstRow);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StoreStreamMessage))]
[JsonSerializable(typeof(WriterAck))]
internal sealed partial class StreamJson : JsonSerializerContext;
