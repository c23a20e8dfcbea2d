import Foundation
import VMImgCLI

exit(VMImgMain.main(Array(CommandLine.arguments.dropFirst())))
