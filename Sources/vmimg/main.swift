import Foundation
import VMImgCLI

exit(VMImgMain.run(Array(CommandLine.arguments.dropFirst())))
