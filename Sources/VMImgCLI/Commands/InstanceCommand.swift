import ArgumentParser

/// `vmimg instance …`: instances are qcow2 drives with a catalog of snapshots, retention, pins,
/// quota and audit, booted in qemu-system-x86_64 (vmimg extension).
struct InstanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "instance", abstract: "Manage instances: drives, snapshots, rebuilds and QEMU runs.",
        subcommands: [
            InstanceCreateCommand.self, InstanceListCommand.self, InstanceShowCommand.self,
            InstanceDeleteCommand.self, InstanceDiskCommand.self, InstanceSnapshotCommand.self,
            InstanceRebuildCommand.self, InstanceDuplicateCommand.self, InstanceAuditCommand.self,
            InstanceStartCommand.self, InstanceStopCommand.self, InstanceServeCommand.self, InstancePolicyCommand.self,
        ])
}
