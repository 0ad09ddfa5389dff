using StdDaq.Pipeline;

namespace StdDaq.Tests.Writer;

/// <summary>
/// One private RabbitMQ (Debian's rabbitmq-server on free loopback ports, its own data folder)
/// shared by the tests of the "broker" collection; stopped and removed at the end. Starting it
/// needs root (the server runs as the rabbitmq user); without root the tests fail saying so.
/// </summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    public PrivateBroker Broker { get; private set; } = null!;

    public string Url => Broker.Url;

    public async Task InitializeAsync() => Broker = await PrivateBroker.StartAsync(TimeSpan.FromSeconds(90));

    public async Task DisposeAsync()
    {
        if (Broker != null)
            await Broker.DisposeAsync();
    }
}

[CollectionDefinition("broker")]
public sealed class BrokerCollection : ICollectionFixture<BrokerFixture>;
