'use strict';
// The JavaScript examples of the seed document (seeds/legacy-upload-download.md), verbatim,
// in document order (generated from the document). seed.test.js runs each one.
module.exports = [
  {
    "section": "Modules to Import / Modules to Import",
    "code": "import request from '@ohos.request';\n"
  },
  {
    "section": "request.upload / request.upload",
    "code": "  let file1 = { filename: \"test\", name: \"test\", uri: \"internal://cache/test.jpg\", type: \"jpg\" };\n  let data = { name: \"name123\", value: \"123\" };\n  let header = { key1: \"value1\", key2: \"value2\" };\n  let uploadTask;\n  request.upload({ url: 'https://patch', header: header, method: \"POST\", files: [file1], data: [data] }).then((data) => {\n      uploadTask = data;\n  }).catch((err) => {\n      console.error('Failed to request the upload. Cause: ' + JSON.stringify(err));\n  })\n  "
  },
  {
    "section": "request.upload / request.upload",
    "code": "  let file1 = { filename: \"test\", name: \"test\", uri: \"internal://cache/test.jpg\", type: \"jpg\" };\n  let data = { name: \"name123\", value: \"123\" };\n  let header = { key1: \"value1\", key2: \"value2\" };\n  let uploadTask;\n  request.upload({ url: 'https://patch', header: header, method: \"POST\", files: [file1], data: [data] }, (err, data) => {\n      if (err) {\n          console.error('Failed to request the upload. Cause: ' + JSON.stringify(err));\n          return;\n      }\n      uploadTask = data;\n  });\n  "
  },
  {
    "section": "UploadTask / on('progress')",
    "code": "  uploadTask.on('progress', function callback(uploadedSize, totalSize) {\n      console.info(\"upload totalSize:\" + totalSize + \"  uploadedSize:\" + uploadedSize);\n  }\n  );\n  "
  },
  {
    "section": "UploadTask / on('headerReceive')",
    "code": "  uploadTask.on('headerReceive', function callback(headers){   \n      console.info(\"upOnHeader headers:\" + JSON.stringify(headers));\n  }\n  );\n  "
  },
  {
    "section": "UploadTask / off('progress')",
    "code": "  uploadTask.off('progress', function callback(uploadedSize, totalSize) {\n      console.info('uploadedSize: ' + uploadedSize, 'totalSize: ' + totalSize);\n  }\n  );\n  "
  },
  {
    "section": "UploadTask / off('headerReceive')",
    "code": "  uploadTask.off('headerReceive', function callback(headers) {\n      console.info(\"upOnHeader headers:\" + JSON.stringify(headers));\n  }\n  );\n  "
  },
  {
    "section": "UploadTask / remove",
    "code": "  uploadTask.remove().then((result) => {\n      if (result) {\n          console.info('Upload task removed successfully. ');\n      } else {\n          console.error('Failed to remove the upload task. ');\n      }\n  }).catch((err) => {\n      console.error('Failed to remove the upload task. Cause: ' + JSON.stringify(err));\n  });\n  "
  },
  {
    "section": "UploadTask / remove",
    "code": "  uploadTask.remove((err, result) => {\n      if (err) {\n          console.error('Failed to remove the upload task. Cause: ' + JSON.stringify(err));\n          return;\n      }\n      if (result) {\n          console.info('Upload task removed successfully.');\n      } else {\n          console.error('Failed to remove the upload task.');\n      }\n  });\n  "
  },
  {
    "section": "request.download / request.download",
    "code": "  let downloadTask;\n  request.download({ url: 'https://xxxx/xxxx.hap' }).then((data) => {\n      downloadTask = data;\n  }).catch((err) => {\n      console.error('Failed to request the download. Cause: ' + JSON.stringify(err));\n  })\n  "
  },
  {
    "section": "request.download / request.download",
    "code": "  let downloadTask;\n  request.download({ url: 'https://xxxx/xxxxx.hap', \n  filePath: 'xxx/xxxxx.hap'}, (err, data) => {\n      if (err) {\n          console.error('Failed to request the download. Cause: ' + JSON.stringify(err));\n          return;\n      }\n      downloadTask = data;\n  });\n  "
  },
  {
    "section": "DownloadTask / on('progress')",
    "code": "      downloadTask.on('progress', function download_callback(receivedSize, totalSize) {\n      console.info(\"download receivedSize:\" + receivedSize + \" totalSize:\" + totalSize);\n  }\n  );\n  });\n  "
  },
  {
    "section": "DownloadTask / off('progress')",
    "code": "      downloadTask .off('progress', function download_callback(receivedSize, totalSize) {\n          console.info(\"download receivedSize:\" + receivedSize + \" totalSize:\" + totalSize);\n      }\n  );\n  });\n  "
  },
  {
    "section": "DownloadTask / on('complete'|'pause'|'remove')",
    "code": "      downloadTask.on('complete', function callback() {\n          console.info('Download task completed.');\n      }\n  );\n  });\n  "
  },
  {
    "section": "DownloadTask / off('complete'|'pause'|'remove')",
    "code": "      downloadTask.off('complete', function callback() {\n          console.info('Download task completed.');\n      }\n  );\n  }); \n  "
  },
  {
    "section": "DownloadTask / on('fail')",
    "code": "      downloadTask.on('fail', function callBack(err) {\n          console.info('Download task failed. Cause:' + err);\n      }\n  );\n  });\n  "
  },
  {
    "section": "DownloadTask / off('fail')",
    "code": "      downloadTask.off('fail', function callBack(err) {\n          console.info('Download task failed. Cause:' + err);\n      } \n  );\n  });\n  "
  },
  {
    "section": "DownloadTask / remove",
    "code": "  downloadTask.remove().then((result) => {\n      if (result) {\n          console.info('Download task removed.');\n      } else {\n          console.error('Failed to remove the download task.');\n      }\n  }).catch ((err) => {\n      console.error('Failed to remove the download task.');\n  });\n  "
  },
  {
    "section": "DownloadTask / remove",
    "code": "  downloadTask.remove((err, result)=>{\n      if(err) {\n          console.error('Failed to remove the download task.');\n          return;\n      } \n      if (result) {\n          console.info('Download task removed.');\n      } else {\n          console.error('Failed to remove the download task.');\n      } \n  });\n  "
  },
  {
    "section": "DownloadTask / query",
    "code": "  downloadTask.query().then((downloadInfo) => {    \n      console.info('Download task queried. Data:' + JSON.stringify(downloadInfo))\n  }) .catch((err) => {\n      console.error('Failed to query the download task. Cause:' + err)\n  });\n  "
  },
  {
    "section": "DownloadTask / query",
    "code": "  downloadTask.query((err, downloadInfo)=>{\n      if(err) {\n          console.error('Failed to query the download mimeType. Cause:' + JSON.stringify(err));\n      } else {\n          console.info('download query success. data:'+ JSON.stringify(downloadInfo));\n      }\n  });\n  "
  },
  {
    "section": "DownloadTask / queryMimeType",
    "code": "  downloadTask.queryMimeType().then((data) => {    \n      console.info('Download task queried. Data:' + JSON.stringify(data));\n  }).catch((err) => {\n      console.error('Failed to query the download MimeType. Cause:' + JSON.stringify(err))\n  });\n  "
  },
  {
    "section": "DownloadTask / queryMimeType",
    "code": "  downloadTask.queryMimeType((err, data)=>{\n      if(err) {\n          console.error('Failed to query the download mimeType. Cause:' + JSON.stringify(err));\n      } else {\n          console.info('Download task queried. data:' + JSON.stringify(data));\n      }\n  });\n  "
  },
  {
    "section": "DownloadTask / pause",
    "code": "  downloadTask.pause().then((result) => {    \n      if (result) {\n           console.info('Download task paused. ');\n      } else {\n          console.error('Failed to pause the download task. Cause:' + JSON.stringify(result));\n      }\n  }).catch((err) => {\n      console.error('Failed to pause the download task. Cause:' + JSON.stringify(err));\n  });\n  "
  },
  {
    "section": "DownloadTask / pause",
    "code": "  downloadTask.pause((err, result)=>{\n      if(err) {\n          console.error('Failed to pause the download task. Cause:' + JSON.stringify(err));\n          return;\n      }\n      if (result) {\n           console.info('Download task paused. ');\n      } else {\n          console.error('Failed to pause the download task. Cause:' + JSON.stringify(result));\n      }\n  });\n  "
  },
  {
    "section": "DownloadTask / resume",
    "code": "  downloadTask.resume().then((result) => {\n      if (result) {\n          console.info('Download task resumed.')\n      } else {\n          console.error('Failed to resume the download task. ');\n      }\n      console.info('Download task resumed.')\n  }).catch((err) => {\n      console.error('Failed to resume the download task. Cause:' + err);\n  });\n  "
  },
  {
    "section": "DownloadTask / resume",
    "code": "  downloadTask.resume((err, result)=>{\n      if (err) {\n          console.error('Failed to resume the download task. Cause:' + err);\n          return;\n      } \n      if (result) {\n          console.info('Download task resumed.');\n      } else {\n          console.error('Failed to resume the download task.');\n      }\n  });\n  "
  }
];
