using StdDaq.Shared.Metrics;

namespace StdDaq.Agent;

/// <summary>The agent's counters (<see cref="CounterSet{TName}"/>).</summary>
public enum AgentCounter
{
    RequestsSucceeded,
    RequestsFailed,
}

/// <summary>The agent's counter set, named like the other services' (meter StdDaq.WriterAgent).</summary>
public static class AgentStats
{
    public static CounterSet<AgentCounter> Create(string serviceName) =>
        new("StdDaq.WriterAgent", "writer_agent", [new("service", serviceName)]);
}
