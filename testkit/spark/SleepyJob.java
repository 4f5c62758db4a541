import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.SparkConf;

/** Tasks that each sleep, so that executors are busy while the test decommissions one. */
public class SleepyJob {
  public static void main(String[] args) throws Exception {
    int tasks = Integer.parseInt(args[0]);
    long sleepMs = Long.parseLong(args[1]);
    JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("sleepy"));
    List<Integer> items = new ArrayList<>();
    for (int i = 0; i < tasks; i++) items.add(i);
    long count = sc.parallelize(items, tasks).map(i -> { Thread.sleep(sleepMs); return i; }).count();
    System.out.println("SLEEPY-JOB-DONE count=" + count);
    sc.stop();
  }
}
